#!/bin/sh
# Starts, stops or restarts one member of the loopback etcd test cluster (tests/cli/etcd.rs).
#
#   sh member.sh start|stop|restart CONF
#
# CONF is a shell file the harness writes per member; it sets name, ip, initial_cluster,
# data_dir, ca, cert, key, pidfile, log and owner (the pid of the test process).
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
#
# The member reads its certificate files at start: whatever is at $cert/$key/$ca then is what
# it serves and trusts until the next restart.
set -u

action="${1:?usage: member.sh start|stop|restart CONF}"
conf="${2:?usage: member.sh start|stop|restart CONF}"
# shellcheck disable=SC1090
. "$conf"

# alive PID: PID is our etcd. Its command line names our data dir (a reused pid does not;
# a zombie's command line is empty; a child that has not exec'ed etcd yet does not).
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] &&
        tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "--data-dir=$data_dir"
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

start() {
    if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
        echo "$name is already running (pid $(cat "$pidfile"))" >&2
        return 0
    fi
    rm -f "$pidfile"
    note "starting"
    # The new session's first process writes its own pid, then becomes etcd.
    # shellcheck disable=SC2016
    setsid sh -c 'echo "$$" >"$1.tmp" && mv "$1.tmp" "$1" && shift && exec "$@"' \
        etcd-member "$pidfile" \
        etcd \
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
        --log-outputs=stderr \
        </dev/null >>"$log" 2>&1 &
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
        mine() { tr "\0" "\n" <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--data-dir=$data_dir"; }
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
*)
    echo "usage: member.sh start|stop|restart CONF" >&2
    exit 2
    ;;
esac
