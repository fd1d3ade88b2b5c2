# Sourced by scripts/test.sh: the Debian packages that some tests drive for real -- `bubblewrap` (the Python
# sandbox's namespaces) and `chromium` (the web UI's browser test). Installed with apt-get when they are
# missing and this is a Debian-family machine we may install on (root, or sudo without a password); otherwise,
# or if the install fails, only the tests that need them skip, each with a message naming the package.
_llmlab_missing=()
command -v bwrap >/dev/null 2>&1 || _llmlab_missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || _llmlab_missing+=(chromium)
if [ "${#_llmlab_missing[@]}" -gt 0 ] && [ -z "${LLMLAB_NO_APT:-}" ] && command -v apt-get >/dev/null 2>&1; then
  _llmlab_sudo=""
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then _llmlab_sudo="sudo -n"; else _llmlab_sudo="skip"; fi
  fi
  if [ "$_llmlab_sudo" != skip ]; then
    echo "installing Debian packages for the tests: ${_llmlab_missing[*]} ..." >&2
    if ! { $_llmlab_sudo apt-get update -qq >/dev/null && \
           DEBIAN_FRONTEND=noninteractive $_llmlab_sudo apt-get install -y -qq "${_llmlab_missing[@]}" >/dev/null; }; then
      echo "warning: could not install ${_llmlab_missing[*]}; the tests that need them will skip" >&2
    fi
  else
    echo "note: ${_llmlab_missing[*]} missing and no root; the tests that need them will skip" >&2
  fi
fi
unset _llmlab_missing _llmlab_sudo
