# The rock admin image: deno, kubectl and rock's source. Build from the repository root:
#   docker build -f deploy/kubernetes/admin.Dockerfile -t REGISTRY/rock-admin:TAG .
ARG DENO_VERSION=2.9.6
FROM denoland/deno:debian-${DENO_VERSION}
ARG KUBECTL_VERSION=v1.32.4
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl \
  && arch="$(dpkg --print-architecture)" \
  && curl -fsSLo /usr/local/bin/kubectl \
    "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" \
  && chmod +x /usr/local/bin/kubectl \
  && apt-get purge -y curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY deno.json deno.lock main.ts ./
COPY src ./src
COPY rock-conf ./rock-conf
RUN deno cache main.ts
USER deno
ENTRYPOINT ["deno", "run", "--allow-all", "/app/main.ts"]
