#!/usr/bin/env bash
# genq: install the Debian packages needed to build genq and run its local
# stack (deploy/stack.sh). Idempotent; does nothing when all are present.
#
#   deploy/setup.sh                    install what is missing (needs root)
#   deploy/setup.sh --names-for N...   map pkg-config/tool names to Debian
#                                      package names (used by `make check-deps`)
set -euo pipefail

PKGS=(build-essential pkg-config librdkafka-dev libcurl4-openssl-dev
      libprotobuf-c-dev protobuf-c-compiler libjansson-dev libyaml-dev
      libpq-dev postgresql libmicrohttpd-dev check uuid-dev curl procps
      iproute2 python3 libssl-dev)
JAVA_PKG=openjdk-17-jre-headless
MAVEN_PKG=maven

# pkg-config module or tool name -> Debian package.
debname() {
	case "$1" in
	rdkafka | rdkafka++)    echo librdkafka-dev ;;
	libcurl)                echo libcurl4-openssl-dev ;;
	libprotobuf-c)          echo libprotobuf-c-dev ;;
	protoc-c)               echo protobuf-c-compiler ;;
	jansson)                echo libjansson-dev ;;
	yaml-0.1)               echo libyaml-dev ;;
	libpq)                  echo libpq-dev ;;
	libmicrohttpd)          echo libmicrohttpd-dev ;;
	check)                  echo check ;;
	uuid)                   echo uuid-dev ;;
	libcrypto|openssl)      echo libssl-dev ;;
	pkg-config)             echo pkg-config ;;
	cc | gcc | make)        echo build-essential ;;
	java)                   echo "$JAVA_PKG" ;;
	mvn)                    echo "$MAVEN_PKG" ;;
	psql | pg_ctl | initdb) echo postgresql ;;
	*)                      return 1 ;;
	esac
}

if [[ "${1:-}" == "--names-for" ]]; then
	shift
	out=()
	for n in "$@"; do
		if d=$(debname "$n"); then
			# de-duplicate (cc and make both map to build-essential)
			[[ " ${out[*]:-} " == *" $d "* ]] || out+=("$d")
		else
			echo "setup.sh: no Debian package known for '$n'" >&2
		fi
	done
	echo "${out[*]:-}"
	exit 0
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [--names-for NAME...]" >&2
	exit 2
fi

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Major version of the `java` on PATH, or 0.
java_major() {
	local v
	command -v java >/dev/null || { echo 0; return; }
	v=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)
	v=${v#1.}       # "1.8.0_x" -> 8
	v=${v%%[.+_-]*}
	[[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done
if (( $(java_major) < 17 )); then
	missing+=("$JAVA_PKG")
fi
command -v mvn >/dev/null || missing+=("$MAVEN_PKG")

if (( ${#missing[@]} == 0 )); then
	echo "setup.sh: all packages present"
	exit 0
fi

echo "setup.sh: missing: ${missing[*]}"
install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
	echo "setup.sh: not root; run:" >&2
	echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install_cmd[*]}" >&2
	exit 1
fi
echo "setup.sh: apt-get update"
apt-get update
echo "setup.sh: ${install_cmd[*]}"
DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}"
echo "setup.sh: installed ${missing[*]}"
