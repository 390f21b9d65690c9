# Sourced by the scripts that debootstrap Debian (setup_docker.sh, test_minimal.sh).

# Prints the Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URL <suite> ..."), else
# deb.debian.org. $1: the suite, e.g. bookworm.
debian_mirror() {
  local suite="$1" files=() url=""
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && files+=("$f")
  done
  if [ "${#files[@]}" -gt 0 ]; then
    url="$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+' "${files[@]}" 2>/dev/null |
      awk '{print $2}' | grep -vE 'security|updates' | grep -E '/debian/?$' | head -n1 || true)"
    if [ -z "$url" ]; then
      url="$(grep -hE "^deb[[:space:]]" "${files[@]}" 2>/dev/null |
        awk -v s="$suite" '$0 ~ " "s" " {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' ||
        true)"
    fi
  fi
  printf '%s\n' "${url:-http://deb.debian.org/debian}"
}
