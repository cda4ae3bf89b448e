#!/bin/sh
# Starts, stops or restarts one member of the loopback etcd test cluster (tests/cli/etcd/).
#
#   sh member.sh start|stop|restart|status CONF
#
# CONF is a shell file the harness writes per member. It always sets name (a label for
# messages), pidfile, log and owner (the pid of the test process), and then either
#   - ip, initial_cluster, data_dir, ca, cert, key: the member's settings, passed to etcd as the
#     flags of legacy_command below (EtcdCluster::start); or
#   - root and unit: a node root (a fake `/`) and the etcd.service in it. The member runs what
#     that unit says, and nothing in CONF changes it (EtcdCluster::start_nodes); see "Node
#     roots" below.
#
# start    launches etcd detached (own session, stdin/stdout/stderr away from the caller, so a
#          caller that reads our output sees EOF at once), waits until the pid file names the
#          running etcd (at most 10 s), starts a watchdog that kills the member once the test
#          process is gone (so no etcd outlives a killed test run), and returns. It does not
#          wait for the member to be healthy. Starting a running member does nothing.
# stop     SIGTERM, waits for the exit (at most $ETCD_STOP_GRACE seconds, default 15), then
#          SIGKILL (waits at most 5 s more); removes the pid file. Stopping a stopped member
#          does nothing.
# restart  stop, then start.
# status   exits 0 if the member runs, 3 if not (as `systemctl is-active` does).
#
# The member reads its certificate files at start: whatever is at the cert/key/CA paths then is
# what it serves and trusts until the next restart.
#
# Node roots. The unit is read as systemd reads it, within limits: lines ending in `\` are
# joined, comments and sections other than [Service] are skipped; the last ExecStart= is the
# command, split on blanks (no quotes, no $VAR expansion; a leading -, @, +, ! or : is dropped);
# every EnvironmentFile= (a leading `-`: may be missing) is read as KEY=VALUE lines (# and ;
# comments, one pair of surrounding quotes removed). etcd then runs with a clean environment,
# as under systemd: PATH and the environment files' variables (etcd reads its ETCD_* variables
# natively). The one difference from the node it pretends to be: an absolute path under /etc/
# or /var/ — a word of the command, the value of a --flag=VALUE word, the value of a variable,
# an EnvironmentFile= path — gets $root in front. The data dir must be given as
# --data-dir=DIR or ETCD_DATA_DIR: it is how a pid is recognised as this member.
set -u

usage="usage: member.sh start|stop|restart|status CONF"
action="${1:?$usage}"
conf="${2:?$usage}"
# shellcheck disable=SC1090
. "$conf"

# The PATH systemd gives services.
SERVICE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
    echo "member.sh: $name: $*" >&2
    exit 1
}

# reroot WORD: WORD with an absolute path under /etc/ or /var/ (the whole word, or the value
# of --flag=VALUE) moved under $root.
reroot() {
    case "$1" in
    /etc/* | /var/*) printf '%s\n' "$root$1" ;;
    --*=*)
        case "${1#*=}" in
        /etc/* | /var/*) printf '%s\n' "${1%%=*}=$root${1#*=}" ;;
        *) printf '%s\n' "$1" ;;
        esac
        ;;
    *) printf '%s\n' "$1" ;;
    esac
}

# unit_values KEY: the values of KEY= in the [Service] section of $unit, one per line,
# continuation lines joined.
unit_values() {
    awk -v key="$1" '
        { sub(/\r$/, "") }
        cont { sub(/^[ \t]+/, ""); $0 = joined " " $0; cont = 0 }
        /\\$/ { joined = substr($0, 1, length($0) - 1); cont = 1; next }
        /^[ \t]*$/ || /^[ \t]*[#;]/ { next }
        /^[ \t]*\[/ { section = $0; gsub(/[ \t]/, "", section); next }
        section == "[Service]" {
            eq = index($0, "=")
            if (eq == 0) next
            k = substr($0, 1, eq - 1)
            gsub(/[ \t]/, "", k)
            if (k != key) next
            v = substr($0, eq + 1)
            sub(/^[ \t]+/, "", v)
            sub(/[ \t]+$/, "", v)
            print v
        }
    ' "$unit"
}

# env_file FILE: its KEY=VALUE lines, values unquoted and rerooted, one per line.
env_file() {
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line#"${line%%[! 	]*}"}"
        case "$line" in '' | '#'* | ';'*) continue ;; esac
        key="${line%%=*}"
        [ "$key" = "$line" ] && continue
        case "$key" in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
        value="${line#*=}"
        case "$value" in
        \"*\") value="${value#\"}" value="${value%\"}" ;;
        \'*\') value="${value#\'}" value="${value%\'}" ;;
        esac
        printf '%s=%s\n' "$key" "$(reroot "$value")"
    done <"$1"
}

# Node root: read the unit once; sets exec_start (the rerooted command, one word a line),
# environment (KEY=VALUE lines) and data_dir.
if [ -n "${unit:-}" ]; then
    [ -r "$unit" ] || fail "cannot read the unit $unit"
    raw="$(unit_values ExecStart | tail -n 1)"
    [ -n "$raw" ] || fail "$unit has no ExecStart="
    exec_start=""
    first=1
    set -f
    for word in $raw; do
        if [ "$first" = 1 ]; then
            while case "$word" in [-@+!:]*) true ;; *) false ;; esac; do word="${word#?}"; done
            first=0
        fi
        exec_start="$exec_start$(reroot "$word")
"
    done
    set +f
    environment=""
    files="$(unit_values EnvironmentFile)"
    while IFS= read -r file; do
        [ -n "$file" ] || continue
        optional=0
        case "$file" in -*) optional=1 file="${file#-}" ;; esac
        file="$(reroot "$file")"
        if [ -r "$file" ]; then
            environment="$environment$(env_file "$file")
"
        elif [ "$optional" = 0 ]; then
            fail "cannot read the EnvironmentFile $file of $unit"
        fi
    done <<EOF
$files
EOF
    data_dir="$(printf '%s' "$exec_start" | sed -n 's/^--data-dir=//p' | tail -n 1)"
    if [ -z "$data_dir" ]; then
        data_dir="$(printf '%s' "$environment" | sed -n 's/^ETCD_DATA_DIR=//p' | tail -n 1)"
    fi
    [ -n "$data_dir" ] || fail "$unit gives no --data-dir=DIR (nor ETCD_DATA_DIR)"
fi

# alive PID: PID is our etcd. Its command line or environment names our data dir (a reused pid
# does not; a zombie's are empty; a child that has not exec'ed etcd yet does not).
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] &&
        { tr '\0' '\n' <"/proc/$1/cmdline" && tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null |
        grep -qxF -e "--data-dir=$data_dir" -e "ETCD_DATA_DIR=$data_dir"
}

# running PID: PID is a live process (not a zombie).
running() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
        [ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]
}

note() {
    echo "member.sh: $(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $name: $*" >>"$log"
}

# wait_gone PID TENTHS: waits until PID is no longer our etcd, at most TENTHS tenths of a second.
wait_gone() {
    i=0
    while alive "$1"; do
        [ "$i" -ge "$2" ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 0
}

# launch COMMAND...: runs COMMAND detached in a new session whose first process writes its own
# pid to $pidfile, then becomes COMMAND.
launch() {
    # shellcheck disable=SC2016
    setsid sh -c 'echo "$$" >"$1.tmp" && mv "$1.tmp" "$1" && shift && exec "$@"' \
        etcd-member "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
}

legacy_command() {
    launch etcd \
        --name="$name" \
        --data-dir="$data_dir" \
        --listen-client-urls="https://$ip:2379" \
        --advertise-client-urls="https://$ip:2379" \
        --listen-peer-urls="https://$ip:2380" \
        --initial-advertise-peer-urls="https://$ip:2380" \
        --initial-cluster="$initial_cluster" \
        --initial-cluster-state=new \
        --initial-cluster-token=certs-test \
        --cert-file="$cert" \
        --key-file="$key" \
        --trusted-ca-file="$ca" \
        --client-cert-auth \
        --peer-cert-file="$cert" \
        --peer-key-file="$key" \
        --peer-trusted-ca-file="$ca" \
        --peer-client-cert-auth \
        --pre-vote \
        --logger=zap \
        --log-outputs=stderr
}

# The unit's command with the environment files' variables, in a clean environment.
node_command() {
    set -- env -i "PATH=$SERVICE_PATH"
    while IFS= read -r kv; do
        [ -n "$kv" ] && set -- "$@" "$kv"
    done <<EOF
$environment
EOF
    while IFS= read -r word; do
        [ -n "$word" ] && set -- "$@" "$word"
    done <<EOF
$exec_start
EOF
    note "runs $unit: $*"
    launch "$@"
}

start() {
    if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
        echo "$name is already running (pid $(cat "$pidfile"))" >&2
        return 0
    fi
    rm -f "$pidfile"
    note "starting"
    if [ -n "${unit:-}" ]; then
        node_command
    else
        legacy_command
    fi
    i=0
    until [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; do
        if [ "$i" -ge 100 ]; then
            note "did not come up within 10 s"
            echo "$name did not start within 10 s; the end of $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    pid="$(cat "$pidfile")"
    note "started, pid $pid"
    # Watchdog: once the test process is gone, the member goes too. Ends with the member.
    # shellcheck disable=SC2016
    setsid sh -c '
        owner=$1 pid=$2 data_dir=$3
        mine() {
            { tr "\0" "\n" <"/proc/$pid/cmdline" && tr "\0" "\n" <"/proc/$pid/environ"; } 2>/dev/null |
                grep -qxF -e "--data-dir=$data_dir" -e "ETCD_DATA_DIR=$data_dir"
        }
        while mine && kill -0 "$owner" 2>/dev/null && [ -n "$(tr -d "\0" <"/proc/$owner/cmdline" 2>/dev/null)" ]; do
            sleep 1
        done
        if mine; then
            kill -TERM "$pid" 2>/dev/null
            sleep 3
            mine && kill -KILL "$pid" 2>/dev/null
        fi
    ' etcd-watchdog "$owner" "$pid" "$data_dir" </dev/null >/dev/null 2>&1 &
    return 0
}

stop() {
    if [ ! -f "$pidfile" ]; then
        return 0
    fi
    pid="$(cat "$pidfile")"
    if alive "$pid"; then
        note "stopping pid $pid (SIGTERM)"
        kill -TERM "$pid" 2>/dev/null
        grace="${ETCD_STOP_GRACE:-15}"
        if ! wait_gone "$pid" "$((grace * 10))"; then
            note "pid $pid still running $grace s after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            if ! wait_gone "$pid" 50; then
                echo "$name (pid $pid) survived SIGKILL for 5 s" >&2
                return 1
            fi
        fi
        note "stopped pid $pid"
    elif running "$pid"; then
        note "pid file names pid $pid, which is not this member: left alone"
    fi
    rm -f "$pidfile"
    return 0
}

case "$action" in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) [ -f "$pidfile" ] && alive "$(cat "$pidfile")" || exit 3 ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
