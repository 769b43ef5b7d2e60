#!/usr/bin/env bash
# genq local stack: a single-node Kafka (KRaft) and a PostgreSQL cluster run
# as plain background processes, for development and tests. No Docker.
#
#   deploy/stack.sh up       start both (idempotent), migrate, create topics
#   deploy/stack.sh down     stop both (idempotent)
#   deploy/stack.sh status   print up/down; exit 0 only if both are up
#   deploy/stack.sh env      print the env file (`source .stack/env`)
#
# Environment:
#   GENQ_STACK_DIR   state directory           (default <repo>/.stack)
#   GENQ_KAFKA_PORT  Kafka listener port       (default 19092; controller +1)
#   GENQ_PG_PORT     PostgreSQL port           (default 15432)
#   GENQ_PARTITIONS  partitions per job topic  (default 6)
#   GENQ_BIN         genq CLI                  (default <repo>/build/genq)
#
# Both services listen on 127.0.0.1 only. PostgreSQL trusts every loopback
# connection (initdb -A trust) and the `genq` role is a superuser: fine for a
# throwaway dev/test stack on one machine, never for anything shared.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STACK=$(realpath -m -- "${GENQ_STACK_DIR:-$REPO/.stack}")
KPORT=${GENQ_KAFKA_PORT:-19092}
PGPORT=${GENQ_PG_PORT:-15432}
PARTITIONS=${GENQ_PARTITIONS:-6}
GENQ_BIN=${GENQ_BIN:-$REPO/build/genq}
for v in KPORT PGPORT PARTITIONS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "stack.sh: $v='${!v}' is not a number" >&2; exit 2; }
done
KCPORT=$((KPORT + 1))

KDIR=$STACK/kafka
KLIB=$KDIR/lib
KPROPS=$KDIR/server.properties
KPID=$KDIR/kafka.pid
KLOG=$KDIR/kafka.log
KLOG4J=$HERE/kafka/log4j.properties
ENVFILE=$STACK/env
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

# Set by pg_paths.
PGROOT='' PGDATA='' PGSOCK='' PGLOG='' PGBIN=''

say() { echo "stack.sh: $*"; }
die() { echo "stack.sh: $*" >&2; exit 1; }

# fail_log LOG MESSAGE: report a failure with the end of the relevant log.
fail_log() {
	local log=$1
	shift
	echo "stack.sh: $*" >&2
	if [[ -s $log ]]; then
		echo "---- last 30 lines of $log ----" >&2
		tail -n 30 "$log" >&2
		echo "----" >&2
	fi
	exit 1
}

trap 'echo "stack.sh: unexpected failure at line $LINENO" >&2' ERR

is_root() { [[ $(id -u) -eq 0 ]]; }

port_open() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# A zombie answers kill -0 but is gone; some containers' init reaps late.
alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || true
	[[ $st != Z ]]
}

# Serialise concurrent up/down on the same state directory. Daemons are
# started with 9>&- so they do not inherit (and hold) the lock.
lock() {
	mkdir -p "$STACK"
	exec 9>"$STACK/.lock"
	flock -w 120 9 || die "another stack.sh holds $STACK/.lock"
}

# ---- Kafka -----------------------------------------------------------------

kafka_version() {
	sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' \
		"$HERE/kafka/pom.xml" | head -n 1
}

# Prints the broker's pid if the pid file names a live broker of this stack.
kafka_pid() {
	local pid
	[[ -f $KPID ]] || return 1
	pid=$(<"$KPID")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
		grep -qF "kafka.Kafka $KPROPS" || return 1
	echo "$pid"
}

kafka_jars() {
	local ver tmp
	ver=$(kafka_version)
	[[ -n $ver ]] || die "no <kafka.version> in $HERE/kafka/pom.xml"
	if [[ -f $KLIB/kafka_2.13-$ver.jar ]]; then
		say "kafka: jars for $ver present in $KLIB"
		return
	fi
	command -v mvn >/dev/null || die "mvn not found: run deploy/setup.sh"
	say "kafka: fetching Kafka $ver jars with mvn (first run only)"
	tmp=$KDIR/lib.tmp
	rm -rf "$tmp"
	mvn -B -q -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" \
		>"$KDIR/mvn.log" 2>&1 ||
		fail_log "$KDIR/mvn.log" "kafka: mvn dependency:copy-dependencies failed"
	[[ -f $tmp/kafka_2.13-$ver.jar ]] ||
		fail_log "$KDIR/mvn.log" "kafka: mvn did not produce kafka_2.13-$ver.jar"
	rm -rf "$KLIB"
	mv "$tmp" "$KLIB"
}

kafka_render() {
	local t
	t=$(<"$HERE/kafka/server.properties.in")
	t=${t//@PORT@/$KPORT}
	t=${t//@CPORT@/$KCPORT}
	t=${t//@LOGDIR@/$KDIR/data}
	printf '%s\n' "$t" >"$KPROPS.tmp"
	mv "$KPROPS.tmp" "$KPROPS"
}

kafka_format() {
	local id flog=$KDIR/format.log
	if [[ -f $KDIR/data/meta.properties ]]; then
		say "kafka: storage already formatted"
		return
	fi
	id=$("$JAVA" -cp "$KLIB/*" -Dlog4j.configuration="file:$KLOG4J" \
		kafka.tools.StorageTool random-uuid 2>>"$flog" | tail -n 1) ||
		fail_log "$flog" "kafka: StorageTool random-uuid failed"
	[[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] ||
		fail_log "$flog" "kafka: bad cluster id '$id'"
	say "kafka: formatting storage (cluster id $id)"
	"$JAVA" -cp "$KLIB/*" -Dlog4j.configuration="file:$KLOG4J" \
		kafka.tools.StorageTool format -t "$id" -c "$KPROPS" \
		>>"$flog" 2>&1 ||
		fail_log "$flog" "kafka: StorageTool format failed"
}

kafka_start() {
	local pid i
	if pid=$(kafka_pid); then
		say "kafka: already running (pid $pid)"
	else
		for i in "$KPORT" "$KCPORT"; do
			! port_open "$i" ||
				die "kafka: port $i is taken by another process (set GENQ_KAFKA_PORT)"
		done
		say "kafka: starting on 127.0.0.1:$KPORT"
		rm -f "$KPID"
		echo "==== stack.sh up $(date -Is)" >>"$KLOG"
		# setsid: own session, no controlling terminal, so it survives the
		# shell that started it. The wrapper records the pid java will have.
		# shellcheck disable=SC2016 # expanded by the inner shell
		setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KPID" \
			"$JAVA" -Xmx512m -Xms256m -XX:+UseG1GC -Djava.awt.headless=true \
			-Dlog4j.configuration="file:$KLOG4J" -cp "$KLIB/*" \
			kafka.Kafka "$KPROPS" </dev/null >>"$KLOG" 2>&1 9>&- &
		for ((i = 0; i < 50; i++)); do
			[[ -s $KPID ]] && break
			sleep 0.1
		done
	fi
	for ((i = 0; i < 60; i++)); do
		port_open "$KPORT" && { say "kafka: listening on 127.0.0.1:$KPORT"; return; }
		kafka_pid >/dev/null || fail_log "$KLOG" "kafka: broker exited"
		sleep 1
	done
	fail_log "$KLOG" "kafka: not listening on 127.0.0.1:$KPORT after 60 s"
}

kafka_stop() {
	local pid i
	if ! pid=$(kafka_pid); then
		rm -f "$KPID"
		say "kafka: not running"
		return
	fi
	say "kafka: stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		say "kafka: still running after 30 s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
	fi
	rm -f "$KPID"
	say "kafka: stopped"
}

# ---- PostgreSQL ------------------------------------------------------------

# Run a PostgreSQL program as the cluster owner. As root that is `postgres`
# (the server refuses to run as root); from / because initdb fails when it
# cannot read its working directory (e.g. under /root).
as_pg() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Where the cluster lives. Normally $STACK/pg. It moves to
# /var/tmp/genq-pg-<uid>-<hash of $STACK> (with $STACK/pg a symlink to it)
# when the postgres user cannot reach $STACK (a checkout under /root, a
# umask-077 tree) or when the socket path would exceed the 107-byte limit of
# a Unix socket address. MODE=create decides and creates; otherwise the
# existing layout is only read.
pg_paths() {
	local mode=${1:-} link=$STACK/pg sock_tail target owner relocate=0
	# shellcheck disable=SC2012
	PGBIN=${GENQ_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}
	if [[ -z $PGBIN ]] && command -v pg_config >/dev/null; then
		PGBIN=$(pg_config --bindir)
	fi
	[[ -x $PGBIN/pg_ctl ]] || die "postgres: no server binaries found; run deploy/setup.sh"
	if is_root; then
		getent passwd postgres >/dev/null || die "postgres: no 'postgres' user; run deploy/setup.sh"
	fi

	if [[ -L $link ]]; then
		PGROOT=$(readlink -m -- "$link")
	elif [[ -e $link || $mode != create ]]; then
		PGROOT=$link
	else
		sock_tail=/run/.s.PGSQL.$PGPORT
		if ((${#link} + ${#sock_tail} > 100)); then
			relocate=1
		elif is_root && ! (cd / && runuser -u postgres -- test -x "$STACK"); then
			relocate=1
		fi
		if ((relocate)); then
			target=/var/tmp/genq-pg-$(id -u)-$(printf '%s' "$STACK" | sha256sum | cut -c1-12)
			say "postgres: $STACK is not usable by the server; keeping the cluster in $target"
			ln -sfn "$target" "$link"
			PGROOT=$target
		else
			PGROOT=$link
		fi
	fi
	PGDATA=$PGROOT/data
	PGSOCK=$PGROOT/run
	PGLOG=$PGROOT/pg.log

	if [[ $mode == create ]]; then
		mkdir -p "$PGROOT"
		# Refuse a directory planted by someone else in /var/tmp.
		owner=$(stat -c %U "$PGROOT")
		[[ $owner == "$(id -un)" || $owner == postgres ]] ||
			die "postgres: $PGROOT belongs to $owner, not $(id -un) or postgres"
		mkdir -p "$PGSOCK"
		if is_root; then
			chown -R postgres:postgres "$PGROOT"
		fi
	fi
}

pg_running() {
	[[ -f $PGDATA/PG_VERSION ]] &&
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

pg_start() {
	local want have ilog=$PGROOT/initdb.log
	want=$("$PGBIN/pg_ctl" --version | awk '{print $3}' | cut -d. -f1)
	if [[ -f $PGDATA/PG_VERSION ]]; then
		have=$(<"$PGDATA/PG_VERSION")
		[[ $have == "$want" ]] ||
			die "postgres: cluster in $PGDATA is version $have but $PGBIN is $want; remove $PGROOT to start over"
		say "postgres: cluster exists in $PGDATA"
	else
		# No PG_VERSION: nothing initialised, or a half-done initdb.
		rm -rf "$PGDATA"
		say "postgres: initdb $PGDATA (PostgreSQL $want)"
		as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres \
			--encoding=UTF8 --locale=C >>"$ilog" 2>&1 ||
			fail_log "$ilog" "postgres: initdb failed"
	fi

	if pg_running; then
		say "postgres: already running"
	else
		! port_open "$PGPORT" ||
			die "postgres: port $PGPORT is taken by another process (set GENQ_PG_PORT)"
		say "postgres: starting on 127.0.0.1:$PGPORT"
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 \
			-o "-p $PGPORT -k '$PGSOCK' -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=128MB" \
			start >/dev/null 9>&- ||
			fail_log "$PGLOG" "postgres: pg_ctl start failed"
	fi

	local psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1
		-p "$PGPORT" -U postgres -d postgres -tA)
	if [[ $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'genq'") != 1 ]]; then
		say "postgres: creating role genq"
		# SUPERUSER: migrations create the per-tenant reporting roles and
		# their policies; acceptable on this local, loopback-only stack.
		"${psql[@]}" -c "CREATE ROLE genq LOGIN SUPERUSER" ||
			fail_log "$PGLOG" "postgres: CREATE ROLE genq failed"
	fi
	if [[ $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'genq'") != 1 ]]; then
		say "postgres: creating database genq"
		"${psql[@]}" -c "CREATE DATABASE genq OWNER genq" ||
			fail_log "$PGLOG" "postgres: CREATE DATABASE genq failed"
	fi
}

pg_stop() {
	if ! pg_running; then
		say "postgres: not running"
		return
	fi
	say "postgres: stopping"
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null ||
		fail_log "$PGLOG" "postgres: pg_ctl stop failed"
	say "postgres: stopped"
}

# ---- genq ------------------------------------------------------------------

write_env() {
	cat >"$ENVFILE.tmp" <<EOF
export GENQ_KAFKA_BROKERS=127.0.0.1:$KPORT
export GENQ_POSTGRES_DSN='host=127.0.0.1 port=$PGPORT dbname=genq user=genq'
EOF
	mv "$ENVFILE.tmp" "$ENVFILE"
}

genq_init() {
	local out=$STACK/genq-init.log deadline
	if [[ ! -x $GENQ_BIN ]]; then
		die "$GENQ_BIN not found: run \`make\` first (or set GENQ_BIN), then deploy/stack.sh up again"
	fi
	# shellcheck source=/dev/null
	source "$ENVFILE"
	say "genq: migrate"
	"$GENQ_BIN" migrate >"$out" 2>&1 || {
		cat "$out" >&2
		fail_log "$PGLOG" "genq: migrate failed"
	}
	cat "$out"
	say "genq: topics create --partitions $PARTITIONS"
	deadline=$((SECONDS + 30))
	until "$GENQ_BIN" topics create --partitions "$PARTITIONS" >"$out" 2>&1; do
		if ((SECONDS >= deadline)); then
			cat "$out" >&2
			fail_log "$KLOG" "genq: topics create still failing after 30 s"
		fi
		sleep 2
	done
	cat "$out"
}

# ---- commands --------------------------------------------------------------

cmd_up() {
	lock
	mkdir -p "$KDIR"
	kafka_jars
	kafka_render
	kafka_format
	kafka_start
	pg_paths create
	pg_start
	write_env
	cat <<EOF
stack.sh: services running
  kafka     127.0.0.1:$KPORT (controller 127.0.0.1:$KCPORT)
            log $KLOG
  postgres  127.0.0.1:$PGPORT, database genq, user genq (socket dir $PGSOCK)
            log $PGLOG
EOF
	genq_init
	say "up; to use it: source $ENVFILE"
}

cmd_down() {
	[[ -d $STACK ]] || { say "nothing to stop ($STACK absent)"; return; }
	lock
	kafka_stop
	pg_paths
	pg_stop
}

cmd_status() {
	local ok=0 pid
	if pid=$(kafka_pid) && port_open "$KPORT"; then
		say "kafka: up (pid $pid, 127.0.0.1:$KPORT)"
	else
		say "kafka: down"
		ok=1
	fi
	pg_paths
	if pg_running && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
		say "postgres: up (127.0.0.1:$PGPORT, data $PGDATA)"
	else
		say "postgres: down"
		ok=1
	fi
	exit "$ok"
}

cmd_env() {
	[[ -f $ENVFILE ]] || die "no $ENVFILE yet: run deploy/stack.sh up"
	cat "$ENVFILE"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 up|down|status|env" >&2
	exit 2
	;;
esac
