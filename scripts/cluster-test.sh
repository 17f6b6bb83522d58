#!/usr/bin/env bash
# `bftlab remote` end to end on one machine: four "hosts" made of Linux network
# namespaces on a bridge, each running its own sshd (Debian's openssh-server, installed
# if missing, as is nftables) with its own work directory; `bftlab remote check`, then
# `remote run` of a scenario with a crash, a restart, a partition (nftables rules in the
# hosts' namespaces) and a Byzantine member (with a WAN from a latency matrix emulated
# in the application), a one-run `sweep --remote`, then `remote kill` and `remote clean`. Checks
# that the record has commits, the timeline was applied and no safety violation was
# seen. Removes every namespace, link and process it made, by their names and pids.
#
# Needs root (namespaces, sshd). Usage:
#   scripts/cluster-test.sh [BFTLAB_BINARY]        (default: target/release/bftlab, built if missing)
# Environment: PROTOCOL=NAME runs that core (default hotstuff); RESULTS=DIR copies the
# run's record there; KEEP=1 keeps the scratch directory (inventory, keys, results);
# MONITOR=1 also gives h4 the monitor role: nodes serve metrics, Prometheus (Debian's
# package, installed if missing) scrapes them there, and the test queries it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BFTLAB=${1:-$ROOT/target/release/bftlab}
HOSTS=4
TAG=bt$$                      # names of everything made here carry this tag
# One /24 per run, on this machine only: the first of 10.199.0-199.0/24 no route uses.
for k in $(seq 0 199); do
    n=$(( ($$ + k) % 200 ))
    if ! ip route | grep -q "^10\.199\.$n\."; then SUBNET=10.199.$n; break; fi
done
[ -n "${SUBNET:-}" ] || { echo "cluster-test: no free 10.199.x.0/24" >&2; exit 1; }
DIR=$(mktemp -d /tmp/bftlab-cluster-XXXXXX)
BRIDGE=${TAG}br

log() { echo "cluster-test: $*"; }

cleanup() {
    set +e
    for i in $(seq 1 $HOSTS); do
        ns=${TAG}h$i
        if [ -f "$DIR/h$i/sshd.pid" ]; then kill "$(cat "$DIR/h$i/sshd.pid")" 2>/dev/null; fi
        # Anything still running inside the namespace (nodes, clients, sshd sessions).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
        ip link del "${TAG}v$i" 2>/dev/null
    done
    ip link del "$BRIDGE" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "cluster-test: needs root (network namespaces, sshd)" >&2; exit 1; }
missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v nft >/dev/null || missing="$missing nftables"
if [ -n "$missing" ]; then
    log "installing$missing (Debian's packages)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >/dev/null
fi
command -v ssh >/dev/null || { echo "cluster-test: needs OpenSSH's client (ssh, scp)" >&2; exit 1; }
if ! [ -x "$BFTLAB" ]; then
    log "building bftlab (release)"
    (cd "$ROOT" && cargo build --release -p benchmark)
fi
mkdir -p /run/sshd

# The network: a bridge in this namespace (the operator's side) and one namespace per
# host, joined to it by a veth pair.
ip link add "$BRIDGE" type bridge
ip addr add "$SUBNET.254/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
ssh-keygen -q -t ed25519 -N "" -f "$DIR/id_ed25519"
cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
chmod 600 "$DIR/authorized_keys"
for i in $(seq 1 $HOSTS); do
    ns=${TAG}h$i
    ip netns add "$ns"
    ip link add "${TAG}v$i" type veth peer name eth0 netns "$ns"
    ip link set "${TAG}v$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "$DIR/h$i/work"
    ssh-keygen -q -t ed25519 -N "" -f "$DIR/h$i/host_key"
    cat > "$DIR/h$i/sshd_config" <<EOF
ListenAddress $SUBNET.$i
HostKey $DIR/h$i/host_key
PidFile $DIR/h$i/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 100
MaxStartups 100
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
    ip netns exec "$ns" /usr/sbin/sshd -f "$DIR/h$i/sshd_config"
done

REGIONS=(us-east-1 eu-west-1 ap-southeast-1 us-west-1)
{
    echo "[ssh]"
    echo "identity = \"id_ed25519\""
    echo "known_hosts = \"known_hosts\""
    for i in $(seq 1 $HOSTS); do
        cat <<EOF
[[host]]
name = "h$i"
ssh = "root@$SUBNET.$i"
public = "$SUBNET.$i"
private = "$SUBNET.$i"
region = "${REGIONS[$((i - 1))]}"
roles = ["node", "client"$( [ "${MONITOR:-0}" = 1 ] && [ "$i" = "$HOSTS" ] && echo ', "monitor"')]
workdir = "$DIR/h$i/work"
EOF
    done
} > "$DIR/inventory.toml"

# sshd needs a moment to listen.
for i in $(seq 1 $HOSTS); do
    for _ in $(seq 1 50); do
        ip netns exec "${TAG}h$i" ss -Htln 2>/dev/null | grep -q ":22 " && break
        sleep 0.1
    done
done

log "remote check"
"$BFTLAB" remote check -i "$DIR/inventory.toml" --nodes 7

log "remote run (7 nodes on 4 hosts; a crash, a restart, a partition, a Byzantine member; a WAN emulated in the application)"
"$BFTLAB" remote run -i "$DIR/inventory.toml" \
    --scenario "$ROOT/harness/scenarios/cluster/crash-restart-byzantine.toml" \
    --latency-matrix "$ROOT/harness/matrices/aws-2017.csv" \
    --protocol "${PROTOCOL:-hotstuff}" --rate 1000 --tx-size 128 --warmup 3 --duration 16 \
    $( [ "${MONITOR:-0}" = 1 ] && echo "--metrics-port 9400 --install-prometheus" ) \
    --results "$DIR/results" | tee "$DIR/run.out"

RECORD=$(ls "$DIR"/results/*.json | head -1)
python3 - "$RECORD" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["kind"] == "bftlab-remote", r["kind"]
assert r["consensus"]["tps"] > 0, r["consensus"]
assert all(b > 0 for b in r["blocks_committed"].values()), r["blocks_committed"]
assert r["safety"]["violations"] == [], r["safety"]
assert len(r["safety"]["nodes_checked"]) == 6, r["safety"]
events = [e["event"] for e in r["timeline_applied"]]
assert events == ["Crash(2)", "Restart(2)", "Partition([0, 1, 2, 3, 6], [4, 5])", "HealAll"], events
assert r["config"]["byzantine"] == {"6": ["equivocate", "double-vote", "garbage"]}, r["config"]["byzantine"]
assert "in the application" in r["config"]["wan"]["emulated"]
assert len(r["hosts"]) == 4 and all("clock_offset_ms" in h for h in r["hosts"])
# The partition held: the cut-off pair (2 of 7) committed nothing from 1 s after the cut
# was in place until the heal began (times from the nodes' start, as applied).
import glob, os
[cut] = [e for e in r["timeline_applied"] if e["event"].startswith("Partition")]
[heal] = [e for e in r["timeline_applied"] if e["event"] == "HealAll"]
cut_from = r["nodes_started_unix_ms"] + int(cut["applied_s"] * 1000) + 1000
cut_to = r["nodes_started_unix_ms"] + int(heal["at_s"] * 1000)
assert cut_to - cut_from >= 1000, (cut, heal)
for n in (4, 5):
    [path] = glob.glob(os.path.join(r["collected"], "*", "summary-%d.json" % n))
    s = json.load(open(path))
    inside = [b for b in s["commits"] if cut_from <= b[0] < cut_to]
    assert not inside, ("node %d committed while cut off" % n, inside)
    assert any(b[0] >= cut_to for b in s["commits"]), ("node %d never committed after the heal" % n)
print("cluster-test: record ok: %s tx/s committed, e2e p50 %s ms, %d honest sequences agree"
      % (r["consensus"]["tps"], r["end_to_end"]["latency"].get("p50_ms"), len(r["safety"]["nodes_checked"])))
EOF

if [ "${MONITOR:-0}" = 1 ]; then
    # The nodes are gone: ask for the last value each reported.
    curl -sf "http://$SUBNET.$HOSTS:9095/api/v1/query" \
        --data-urlencode 'query=max_over_time(bftlab_committed_transactions_total[5m])' > "$DIR/prometheus.json"
    python3 - "$DIR/prometheus.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
assert len(r) >= 6, r
assert all(float(x["value"][1]) > 0 for x in r), r
print("cluster-test: Prometheus scraped %d nodes" % len(r))
EOF
fi

if [ -n "${RESULTS:-}" ]; then mkdir -p "$RESULTS" && cp "$RECORD" "$RESULTS/"; fi

log "sweep --remote (one run: 4 nodes, the highest one Byzantine)"
"$BFTLAB" sweep --remote "$DIR/inventory.toml" --protocols "${PROTOCOL:-hotstuff}" \
    --rates 1000 --faults byzantine:garbage --nodes 4 --tx-size 128 --warmup 2 --duration 5 \
    --results "$DIR/sweep"
python3 - "$DIR/sweep/sweep.jsonl" <<'EOF'
import json, sys
[line] = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert line["status"] == "ok", line
r = json.load(open(line["record"]))
assert r["kind"] == "bftlab-remote" and r["config"]["byzantine"] == {"3": ["garbage"]}, r["config"]
assert r["safety"]["violations"] == [], r["safety"]
print("cluster-test: sweep --remote ok: %s tx/s committed" % line["end_to_end_tps"])
EOF

log "remote kill, remote clean"
"$BFTLAB" remote kill -i "$DIR/inventory.toml"
"$BFTLAB" remote clean -i "$DIR/inventory.toml"
for i in $(seq 1 $HOSTS); do
    if [ -e "$DIR/h$i/work/bftlab" ]; then echo "cluster-test: clean left $DIR/h$i/work/bftlab" >&2; exit 1; fi
done
log "passed"
