#!/usr/bin/env bash
# make-certs.sh — private certificate authorities and certificates for pkit's distributed
# mode (BASP over mutual TLS, issue 11), made with the openssl command (Debian: openssl).
#
#   tools/make-certs.sh [options] DIR
#
# Makes, in DIR (created mode 0700 if missing; refused when owned by another user or
# writable by group or others, since a CA planted there would be used; one run at a time):
#   controller-ca.pem / .key   the CA of controllers (`pkit run` processes that start
#                              children on nodes), made if missing
#   node-ca.pem / .key         the CA of nodes (`pkit node` agents), made if missing
#   controller-NAME.pem / .key one per --controller NAME, signed by controller-ca
#   node-NAME.pem / .key       one per --node NAME, signed by node-ca
# Keys are EC P-256, written mode 0600 (umask 077); certificates are mode 0644.
#
# Then a node runs with        --tls-cert node-NAME.pem --tls-key node-NAME.key
#                              --tls-ca controller-ca.pem
# and a controller with        --tls-cert controller-NAME.pem --tls-key controller-NAME.key
#                              --tls-ca node-ca.pem
#
# Why two CAs and not one: CAF 0.17.6 checks only that a peer's certificate chains to the
# configured CA file — never its name — and each process trusts exactly one CA file. With
# a single CA, a certificate stolen from any node would let its thief act as a controller
# toward every other node (start programs there). With two, a node trusts controller-ca
# only, so a node certificate authenticates nowhere but at controllers, which never take
# orders from nodes. See ISSUE11_DESIGN.md §2.3.
#
# The CA keys sign new certificates: keep them off the machines that run pkit (only the
# CA certificates are needed there). There is no revocation in CAF 0.17.6: to revoke a
# certificate, make new CAs and certificates and replace them everywhere.
#
# Options:
#   --node NAME        make node-NAME.pem/.key (repeatable)
#   --controller NAME  make controller-NAME.pem/.key (repeatable)
#   --days N           validity of new certificates and CAs, in days (default 825); a
#                      certificate never outlives its CA (capped at the CA's end)
#   --force            replace certificates that already exist (never the CAs)
#   -h, --help         this text
# NAME: letters, digits, '.', '_' and '-'. Exit code 0 on success, 1 on an error
# (message on stderr), 2 on a usage error.
set -euo pipefail
umask 077

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "make-certs.sh: $*" >&2; exit 1; }
usage_error() { echo "make-certs.sh: $*" >&2; echo "try: make-certs.sh --help" >&2; exit 2; }

dir="" days=825 force=0
nodes=() controllers=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --node) [[ $# -ge 2 ]] || usage_error "--node needs a NAME"; nodes+=("$2"); shift 2 ;;
    --controller)
      [[ $# -ge 2 ]] || usage_error "--controller needs a NAME"; controllers+=("$2"); shift 2 ;;
    --days) [[ $# -ge 2 ]] || usage_error "--days needs a number"; days=$2; shift 2 ;;
    --force) force=1; shift ;;
    -*) usage_error "unknown option: $1" ;;
    *) [[ -z $dir ]] || usage_error "one DIR only (got '$dir' and '$1')"; dir=$1; shift ;;
  esac
done
[[ -n $dir ]] || usage_error "no DIR given"
[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || usage_error "--days must be a positive number (got '$days')"
for name in ${nodes[@]+"${nodes[@]}"} ${controllers[@]+"${controllers[@]}"}; do
  [[ $name =~ ^[A-Za-z0-9._-]+$ && $name != .* ]] ||
    usage_error "invalid NAME '$name' (letters, digits, '.', '_', '-'; not starting with '.')"
done
command -v openssl >/dev/null || die "the openssl command is missing (Debian: apt-get install openssl)"

mkdir -p -- "$dir"
# Whoever may write to DIR could have planted a CA that would be kept and signed with.
[[ -O $dir ]] || die "$dir is owned by another user: use a directory of your own"
(( (8#$(stat -c %a -- "$dir") & 8#022) == 0 )) ||
  die "$dir is writable by group or others (mode $(stat -c %a -- "$dir")): chmod go-w it"
# One run at a time per DIR: two runs making the same CA would mix its key and certificate.
exec 9<"$dir"
flock -w 60 9 || die "another make-certs.sh keeps $dir locked"
tmp=$(mktemp -d "$dir/.make-certs.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
# An explicit minimal configuration: the system's openssl.cnf (or $OPENSSL_CONF) must not
# add extensions, policies or defaults to what is made here.
printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]' > "$tmp/openssl.cnf"
export OPENSSL_CONF=$tmp/openssl.cnf

# make_ca ROLE: ROLE-ca.pem / ROLE-ca.key, unless both exist.
make_ca() {
  local role=$1 pem="$dir/$1-ca.pem" key="$dir/$1-ca.key"
  if [[ -e $pem || -e $key ]]; then
    [[ -f $pem && -f $key ]] || die "$pem and $key: one exists without the other"
    return
  fi
  openssl req -config "$tmp/openssl.cnf" -x509 -new -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days "$days" -subj "/CN=pkit $role CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; die "cannot make the $role CA"; }
  chmod 600 "$tmp/ca.key"; chmod 644 "$tmp/ca.pem"
  mv -- "$tmp/ca.key" "$key"; mv -- "$tmp/ca.pem" "$pem"
  echo "made $pem (keep $key off the machines that run pkit)"
}

# make_leaf ROLE NAME: ROLE-NAME.pem / .key, signed by ROLE-ca.
make_leaf() {
  local role=$1 name=$2 pem="$dir/$1-$2.pem" key="$dir/$1-$2.key"
  if [[ ( -e $pem || -e $key ) && $force -eq 0 ]]; then
    die "$pem or $key exists (--force replaces it)"
  fi
  # Both usages: a node also accepts connections (server), a controller also makes them
  # (client), and either may later do the other (remote ctl).
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$name" > "$tmp/ext"
  # Never beyond the CA's own end: a reused CA may have less left than --days. (A CA made
  # by this run ends seconds before a leaf of the same --days would: that is not capped.)
  local ca_end left leaf_days=$days
  ca_end=$(openssl x509 -in "$dir/$role-ca.pem" -noout -enddate)
  # A minute of slack: the leaf is signed a moment after this reading, and a CA made in
  # this same second would otherwise leave exactly N days, which the leaf then outlives.
  left=$(( $(date -d "${ca_end#notAfter=}" +%s) - $(date +%s) - 60 ))
  (( left >= 86400 )) || die "$dir/$role-ca.pem ends within a day (${ca_end#notAfter=}): make new CAs"
  if (( days * 86400 - left > 3600 )); then
    leaf_days=$(( left / 86400 ))
    echo "note: $role $name gets $leaf_days days, the rest of $role-ca.pem's validity"
  fi
  openssl req -config "$tmp/openssl.cnf" -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$tmp/leaf.key" -out "$tmp/leaf.csr" -subj "/CN=$name/OU=pkit $role" \
    2>"$tmp/log" || { cat "$tmp/log" >&2; die "cannot make the key of $role $name"; }
  openssl x509 -req -in "$tmp/leaf.csr" -CA "$dir/$role-ca.pem" -CAkey "$dir/$role-ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$leaf_days" -sha256 -extfile "$tmp/ext" \
    -out "$tmp/leaf.pem" 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; die "cannot sign the certificate of $role $name"; }
  chmod 600 "$tmp/leaf.key"; chmod 644 "$tmp/leaf.pem"
  mv -f -- "$tmp/leaf.key" "$key"; mv -f -- "$tmp/leaf.pem" "$pem"
  echo "made $pem and $key"
}

make_ca controller
make_ca node
for name in ${nodes[@]+"${nodes[@]}"}; do make_leaf node "$name"; done
for name in ${controllers[@]+"${controllers[@]}"}; do make_leaf controller "$name"; done
