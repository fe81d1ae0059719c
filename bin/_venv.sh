# Shared by bin/run and bin/test: create .venv and install the project when pyproject.toml changed.
# Usage: . bin/_venv.sh; ensure_venv EXTRAS   (EXTRAS "" for the platform, "test" for the test suite)
ensure_venv() {
  local extras="$1" spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || { echo "error: python3 -m venv failed; install python3-venv (apt-get install -y python3-venv)" >&2; exit 1; }
  fi
  local hash stamp
  hash=$(sha1sum pyproject.toml | cut -c1-12)
  stamp=".venv/.installed-$hash-${extras:-base}"
  # Any install of this pyproject.toml includes the base packages.
  if [ -z "$extras" ] && compgen -G ".venv/.installed-$hash-*" >/dev/null; then
    return 0
  fi
  if [ ! -f "$stamp" ]; then
    echo "==> installing Python packages ($spec)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$spec"
    touch "$stamp"
  fi
}
