#!/usr/bin/env bash
# tools/make-certs.sh from a user's side: usage, exit codes, modes, which CA signs which
# certificate, no overwriting without --force. Exit 0 when every check held.
#   make_certs_test.sh SCRIPT
set -euo pipefail
script=$1
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
fail() { echo "make_certs_test: FAIL: $*" >&2; exit 1; }

# expect_exit CODE CMD...: runs CMD, requires exit code CODE.
expect_exit() {
  local want=$1; shift
  local got=0
  "$@" > "$work/out" 2>&1 || got=$?
  [[ $got -eq $want ]] || { cat "$work/out" >&2; fail "'$*' exited $got, expected $want"; }
}

expect_exit 0 bash "$script" --help
grep -q "Why two CAs" "$work/out" || fail "--help does not print the header"
expect_exit 2 bash "$script"
expect_exit 2 bash "$script" --bogus "$work/d"
expect_exit 2 bash "$script" --node "../x" "$work/d"
expect_exit 2 bash "$script" --node ".hidden" "$work/d"
expect_exit 2 bash "$script" --days 0 "$work/d"
expect_exit 2 bash "$script" "$work/a" "$work/b"
[[ ! -e $work/d ]] || fail "a usage error created the directory"

d=$work/certs
expect_exit 0 bash "$script" --node n1 --node n2 --controller c1 "$d"
for f in controller-ca node-ca node-n1 node-n2 controller-c1; do
  [[ $(stat -c %a "$d/$f.key") == 600 ]] || fail "$f.key is not mode 600"
  [[ $(stat -c %a "$d/$f.pem") == 644 ]] || fail "$f.pem is not mode 644"
  openssl pkey -in "$d/$f.key" -noout -text 2>/dev/null | grep -q "P-256" ||
    fail "$f.key is not an EC P-256 key"
done
# Each leaf chains to its own role's CA and not to the other's.
verify() { openssl verify -CAfile "$1" "$2" > /dev/null 2>&1; }
verify "$d/node-ca.pem" "$d/node-n1.pem" || fail "node-n1 does not chain to node-ca"
verify "$d/controller-ca.pem" "$d/node-n1.pem" && fail "node-n1 chains to controller-ca"
verify "$d/controller-ca.pem" "$d/controller-c1.pem" || fail "controller-c1 does not chain"
verify "$d/node-ca.pem" "$d/controller-c1.pem" && fail "controller-c1 chains to node-ca"

# No overwriting: an existing certificate is refused, --force replaces it, CAs are kept.
ca_before=$(openssl x509 -in "$d/node-ca.pem" -noout -fingerprint)
n1_before=$(openssl x509 -in "$d/node-n1.pem" -noout -fingerprint)
expect_exit 1 bash "$script" --node n1 "$d"
[[ $(openssl x509 -in "$d/node-n1.pem" -noout -fingerprint) == "$n1_before" ]] ||
  fail "a refused run changed node-n1.pem"
expect_exit 0 bash "$script" --force --node n1 "$d"
[[ $(openssl x509 -in "$d/node-n1.pem" -noout -fingerprint) != "$n1_before" ]] ||
  fail "--force did not replace node-n1.pem"
[[ $(openssl x509 -in "$d/node-ca.pem" -noout -fingerprint) == "$ca_before" ]] ||
  fail "a second run replaced the node CA"
verify "$d/node-ca.pem" "$d/node-n1.pem" || fail "the replaced node-n1 does not chain"
# A CA whose key is missing is an error, never silently remade.
rm "$d/controller-ca.key"
expect_exit 1 bash "$script" --controller c2 "$d"
[[ ! -e $d/controller-c2.pem ]] || fail "a certificate was made without the CA key"
ls -A "$d" | grep -q '^\.make-certs' && fail "a scratch directory was left behind"

# Review #10: a leaf never outlives a reused CA (CAs of 3 days, then a leaf asking for 825).
short=$work/short
expect_exit 0 bash "$script" --days 3 "$short"
expect_exit 0 bash "$script" --days 825 --node late "$short"
end_of() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
(( $(end_of "$short/node-late.pem") <= $(end_of "$short/node-ca.pem") )) ||
  fail "node-late.pem outlives node-ca.pem"

# Review #15: a DIR others may write to (a CA could be planted there) is refused, and so
# is one owned by another user; the system's openssl.cnf is not used.
open_dir=$work/open
mkdir -m 0777 "$open_dir"
expect_exit 1 bash "$script" --node n1 "$open_dir"
[[ -e $open_dir/node-ca.pem ]] && fail "made certificates in a world-writable DIR"
if [[ $(id -u) -eq 0 ]]; then
  foreign=$work/foreign
  mkdir -m 0700 "$foreign"
  chown 1000:1000 "$foreign"
  expect_exit 1 bash "$script" --node n1 "$foreign"
fi
printf 'this is not an openssl configuration [[[\n' > "$work/bad.cnf"
OPENSSL_CONF=$work/bad.cnf expect_exit 0 bash "$script" --node n1 "$work/conf"
verify "$work/conf/node-ca.pem" "$work/conf/node-n1.pem" || fail "node-n1 does not chain"
echo "make_certs_test: PASS"
