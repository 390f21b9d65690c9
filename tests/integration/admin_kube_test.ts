/** The admin contract on the kubernetes backend (stand-in API server), in both access modes. */
import { defineAdminContract } from "../contracts/admin_contract.ts";
import { kubeTest } from "../helpers/kube/kubectl.ts";

defineAdminContract("kubernetes", kubeTest, {
  label: "kubernetes, pod-ip",
  admin: { kube: { access: "pod-ip" } },
});
defineAdminContract("kubernetes", kubeTest, {
  label: "kubernetes, api-proxy",
  admin: { kube: { access: "api-proxy" } },
});
