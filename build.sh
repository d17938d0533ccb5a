#!/usr/bin/env bash
# Builds and checks nymchat.
#   ./build.sh          build dist/nymchat (one file), dist/nymchat.1, dist/nymchat.bash
#   ./build.sh test     build, then cargo test and the pytest suite (on a throwaway PostgreSQL,
#                       with Debian's headless chromium for the browser tests)
#   ./build.sh demo     build, then run `nymchat demo`
#   ./build.sh lint     ruff check and format, mypy, cargo fmt --check, cargo clippy, then
#                       build and check nymchat/_native.pyi against the module (stubtest)
#   ./build.sh bench    build, then scripts/bench.py (arguments pass through)
#   ./build.sh clean    remove build outputs (.venv, target, dist)
# Everything the project needs is installed here, into .venv; nothing by hand.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

ensure_venv() {
    command -v python3 >/dev/null || die "python3 (>= 3.11) is needed"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "python3 is $(python3 --version 2>&1); nymchat needs >= 3.11"
    command -v cargo >/dev/null || die "cargo (the Rust toolchain) is needed"
    if [ ! -x "$PY" ]; then
        step "creating .venv"
        python3 -m venv "$VENV"
    fi
    local want have
    want=$(stamp_of pyproject.toml)
    have=$(cat "$VENV/.deps-stamp" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        step "installing pinned build and test dependencies into .venv"
        "$PY" - > "$VENV/requirements.txt" <<'PYEOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
PYEOF
        "$PY" -m pip install --quiet --disable-pip-version-check -r "$VENV/requirements.txt"
        echo "$want" > "$VENV/.deps-stamp"
    fi
}

source_stamp() {
    stamp_of build.sh pyproject.toml Cargo.toml Cargo.lock README.md rust_ext/Cargo.toml \
        docs/man-extra.roff scripts/shell_docs.py \
        $(find nymchat rust_ext/src -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.rs' -o -name '*.sql' \
            -o -path 'nymchat/web/static/*' \) | sort)
}

zipapp_setting() {  # the list [tool.nymchat.zipapp] KEY of pyproject.toml, one a line
    "$PY" -c 'import sys, tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["nymchat"]["zipapp"][sys.argv[1]]))' "$1"
}

# target/zipapp/site-packages: the wheel and its pinned dependencies for this interpreter, plus
# each other CPython's build of the extension modules that are not abi3 (files tagged
# .cpython-3XY-*.so sit side by side; each interpreter loads its own).
stage_site_packages() {
    local wheel=$1 stage=target/zipapp site=target/zipapp/site-packages here version tag other
    rm -rf "$stage"
    mkdir -p "$site"
    zipapp_setting constraints > "$stage/constraints.txt"
    local pip=("$PY" -m pip install --quiet --disable-pip-version-check --no-compile
               -c "$stage/constraints.txt")
    "${pip[@]}" --target "$site" "$wheel"
    here=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    local platforms=()
    for tag in $("$PY" -c 'from packaging import tags; print(*tags.platform_tags())'); do
        [[ $tag == linux_* ]] || platforms+=(--platform "$tag")  # linux_*: this machine only
    done
    for version in $(zipapp_setting pythons); do
        [ "$version" = "$here" ] && continue
        tag=cp${version/./}
        other=$stage/$tag
        "${pip[@]}" --target "$other" --only-binary=:all: --implementation cp \
            --python-version "$version" --abi "$tag" "${platforms[@]}" "$wheel"
        diff -rq -x '*.dist-info' -x '__pycache__' -x "*.cpython-*.so" "$site" "$other" >/dev/null \
            || die "the dependencies for CPython $version differ by more than extension modules"
        (cd "$other" && find . -name "*.cpython-${tag#cp}-*.so") | while read -r file; do
            cp "$other/$file" "$site/$file"
        done
        rm -rf "$other"
    done
}

# Puts nymchat/python_check.py at the top of the zipapp's __main__.py, so that an old Python
# is refused in one line before shiv's bootstrap runs.
guard_main() {
    "$PY" - "$1" nymchat/python_check.py <<'PYEOF'
import sys
import zipfile

archive, guard = sys.argv[1], open(sys.argv[2], "rb").read()
with open(archive, "rb") as file:
    shebang = file.readline()
with zipfile.ZipFile(archive) as source:
    entries = [(info, source.read(info)) for info in source.infolist()]
with open(archive, "wb") as file:
    file.write(shebang)
    with zipfile.ZipFile(file, "w") as out:
        for info, content in entries:
            out.writestr(info, guard + content if info.filename == "__main__.py" else content)
PYEOF
}

build() {
    ensure_venv
    [ -f Cargo.lock ] || die "Cargo.lock is missing (it is committed; restore it)"
    local want
    want=$(source_stamp)
    if [ -x dist/nymchat ] && [ "$(cat dist/.stamp 2>/dev/null)" = "$want" ]; then
        step "dist/nymchat is up to date"
        return
    fi
    step "building the native core (release) and the wheel"
    rm -rf target/wheels nymchat/_native*.so  # a stray dev copy must not reach the wheel
    "$VENV/bin/maturin" build --release --locked --quiet --interpreter "$PY" --out target/wheels
    local wheel
    wheel=$(ls target/wheels/nymchat-*.whl)
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"

    step "packing dist/nymchat (shiv: the wheel and its runtime dependencies)"
    stage_site_packages "$wheel"
    mkdir -p dist
    rm -f dist/nymchat dist/.stamp
    "$VENV/bin/shiv" --compressed --reproducible --compile-pyc -p '/usr/bin/env python3' \
        --site-packages target/zipapp/site-packages -c nymchat -o dist/nymchat
    guard_main dist/nymchat

    step "writing the man page dist/nymchat.1 and bash completion dist/nymchat.bash"
    "$PY" scripts/shell_docs.py man-include > target/man-extra.roff
    "$VENV/bin/argparse-manpage" --pyfile scripts/shell_docs.py --function man_parser \
        --prog nymchat --project-name nymchat \
        --version "$("$PY" -c 'import nymchat; print(nymchat.__version__)')" \
        --description "pseudonymous end-to-end encrypted messaging over the Nym mixnet" \
        --manual-title "nymchat manual" --include target/man-extra.roff \
        --output dist/nymchat.1 >/dev/null
    "$PY" scripts/shell_docs.py completion > dist/nymchat.bash

    step "smoke-running dist/nymchat"
    local shiv_root
    shiv_root=$(mktemp -d)
    SHIV_ROOT=$shiv_root dist/nymchat --version
    rm -rf "$shiv_root"
    echo "$want" > dist/.stamp
}

# The tests' PostgreSQL: Debian's server (installed here when missing), a throwaway cluster
# (scripts/pg_cluster.py) in a temporary directory, stopped however the tests end.
ensure_postgresql() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return
    [ "$(id -u)" = 0 ] \
        || die "the tests need PostgreSQL's server: install Debian's postgresql (sudo apt-get install postgresql)"
    step "installing Debian's postgresql (the tests' database server)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

start_test_postgres() {
    ensure_postgresql
    PG_DIR=$(mktemp -d /tmp/nymchat-pg.XXXXXX)  # not private to root: the server may run as nobody
    trap stop_test_postgres EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    step "starting a throwaway PostgreSQL in $PG_DIR"
    NYMCHAT_TEST_POSTGRES=$("$PY" scripts/pg_cluster.py start "$PG_DIR") \
        || die "could not start the tests' PostgreSQL (above)"
    export NYMCHAT_TEST_POSTGRES
}

stop_test_postgres() {
    "$PY" scripts/pg_cluster.py stop "$PG_DIR" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}

# The browser tests' browser: Debian's chromium (installed here when missing), driven headless
# by tests/browser.py; its path goes to the tests in NYMCHAT_TEST_CHROMIUM.
ensure_chromium() {
    if [ -n "${NYMCHAT_TEST_CHROMIUM:-}" ]; then
        [ -x "$NYMCHAT_TEST_CHROMIUM" ] || die "NYMCHAT_TEST_CHROMIUM=$NYMCHAT_TEST_CHROMIUM is not a program"
        return
    fi
    if ! command -v chromium >/dev/null; then
        [ "$(id -u)" = 0 ] \
            || die "the browser tests need Debian's chromium: install it (sudo apt-get install chromium)"
        step "installing Debian's chromium (the browser tests' browser)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    NYMCHAT_TEST_CHROMIUM=$(command -v chromium) \
        || die "installing Debian's chromium did not put chromium on PATH (above)"
    export NYMCHAT_TEST_CHROMIUM
}

run_tests() {
    ensure_chromium
    start_test_postgres
    step "cargo test"
    cargo test --locked --quiet
    step "pytest"
    NYMCHAT_DIST="$ROOT/dist/nymchat" "$VENV/bin/pytest" "$@"
}

lint() {
    ensure_venv
    step "ruff check"
    "$VENV/bin/ruff" check .
    step "ruff format --check"
    "$VENV/bin/ruff" format --check .
    step "mypy (settings in pyproject.toml)"
    "$VENV/bin/mypy"
    step "cargo fmt --check"
    cargo fmt --all -- --check
    step "cargo clippy"
    cargo clippy --locked --quiet --all-targets --all-features -- -D warnings
    build  # stubtest imports the built module: a no-op when dist/nymchat is up to date
    step "stubtest: nymchat/_native.pyi against the built nymchat._native"
    # PYTHONSAFEPATH: import the installed package (with the module), not ./nymchat
    PYTHONSAFEPATH=1 "$PY" -m mypy.stubtest nymchat._native
}

command=${1:-build}
[ $# -gt 0 ] && shift
case $command in
    build) build ;;
    test) build; run_tests "$@" ;;
    demo) build; exec dist/nymchat demo "$@" ;;
    lint) lint ;;
    bench) build; exec "$PY" scripts/bench.py "$@" ;;
    clean) rm -rf .venv target dist ;;
    -h|--help|help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$command' (try ./build.sh help)" ;;
esac
