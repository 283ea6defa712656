#!/usr/bin/env bash
# demo-cluster.sh - the demo (examples/insurance) on three trustgate nodes that
# share one PostgreSQL store, behind nginx as a round-robin load balancer, all
# in a temp folder that is removed on exit.  `make demo-cluster` runs it.
# Usage: scripts/demo-cluster.sh      (Ctrl-C or SIGTERM stops everything)
#   LISTEN=HOST:PORT  where nginx listens (default 127.0.0.1:8080)
#   BUILD, CONFIG     build folder and config, as for `make demo`
# The nodes listen on 127.0.0.1:8181, :8182 and :8183; the PostgreSQL server
# is private to this run (scripts/pg-test.sh: unix socket only, no fsync).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD:-build}
config=${CONFIG:-examples/insurance/trustgate.yaml}
listen=${LISTEN:-127.0.0.1:8080}
url=http://$listen
ports=(8181 8182 8183)

# A port someone else answers on would pass our health checks: refuse it.
for hp in "$listen" "${ports[@]/#/127.0.0.1:}"; do
    if (exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}") 2>/dev/null; then
        echo "demo-cluster: $hp is in use (is \`make demo\` running?)" >&2
        exit 1
    fi
done

scripts/install-deps.sh cluster
make --no-print-directory trustgate BUILD="$build"
pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
nginx=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-cluster.XXXXXX")
# PostgreSQL (as user postgres) and nginx's workers (as nobody) run as other
# users when we are root: they must be able to pass through the folder.
chmod 711 "$tmp"
ngx_pid='' node_pids=()
# stop PID...: SIGTERM, then up to 15 s (a node drains open turns for up to
# server.drain_timeout) before SIGKILL.
stop() {
    local pid i
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
cleanup() {
    trap - EXIT INT TERM
    # nginx first, so no new request reaches a draining node; the nodes
    # before PostgreSQL, so they can flush their last writes to it.
    [ -z "$ngx_pid" ] || stop "$ngx_pid"
    stop "${node_pids[@]}"
    wait 2>/dev/null || true
    scripts/pg-test.sh stop "$tmp/pg" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# The nodes and nginx run in sessions of their own (setsid), as pg_ctl starts
# PostgreSQL, so Ctrl-C reaches only this script, which stops them in order.
# Ctrl-C and SIGTERM are how the demo is meant to end: not an error.
trap 'exit 0' INT TERM

uri=$(scripts/pg-test.sh start "$tmp/pg" | tail -n 1)
"$pgbin/psql" -X -q "$uri" -c 'create database trustgate'
store=${uri/@\/postgres\?/@\/trustgate\?}

# start_node N: node N in $tmp/nodeN on the Nth port; waits for /healthz.
start_node() {
    local n=$1 port=${ports[$1 - 1]} pid i
    setsid "$build/trustgate" serve -c "$config" --store "$store" --data "$tmp/node$n" \
        --listen "127.0.0.1:$port" >"$tmp/node$n.log" 2>&1 &
    pid=$!
    node_pids+=("$pid")
    for ((i = 0; i < 300; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$tmp/node$n.log" >&2
    echo "demo-cluster: node $n did not come up on 127.0.0.1:$port" >&2
    exit 1
}
start_node 1
# One deployment, one set of keys: the pseudonyms and the audit signatures
# must be the same whichever node writes them (pods would mount one secret).
for n in 2 3; do
    mkdir -p "$tmp/node$n"
    cp -p "$tmp/node1/pseudonym.key" "$tmp/node1/audit-ed25519.pem" "$tmp/node$n/"
    start_node "$n"
done

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
# written by scripts/demo-cluster.sh; everything nginx writes stays in $tmp/nginx
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    # which node served each request: round robin made visible
    log_format node '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent node=\$upstream_addr';
    access_log $tmp/nginx/access.log node;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    # the gateway answers 413 itself (server.max_body)
    client_max_body_size 8m;
    upstream trustgate {
        server 127.0.0.1:${ports[0]};
        server 127.0.0.1:${ports[1]};
        server 127.0.0.1:${ports[2]};
        keepalive 32;
    }
    server {
        listen $listen;
        location / {
            proxy_pass http://trustgate;
            # keep-alive to the nodes needs HTTP/1.1 and no "Connection: close"
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            # streamed answers and the console's server-sent events must
            # arrive as they are written, not when nginx's buffer fills
            proxy_buffering off;
            proxy_request_buffering off;
            # a held answer waits for a reviewer for minutes
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
EOF
setsid "$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
ngx_pid=$!
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "$url/healthz" && break
    sleep 0.1
done
curl -sf -o /dev/null "$url/healthz" || { cat "$tmp/nginx/error.log" >&2; echo "demo-cluster: nginx did not come up on $listen" >&2; exit 1; }

cat <<EOF
trustgate demo
  chat page  $url/          play the customer (try 我想投资60万买理财保险，推荐哪个产品？)
  console    $url/console/  log in as reviewer1, agent1 or super1, password 'demo'
  API key 'tg-demo-key'  (try: curl -s $url/v1/chat/completions \\
    -H 'Authorization: Bearer tg-demo-key' -H 'Content-Type: application/json' \\
    -d '{"messages":[{"role":"user","content":"意外险理赔需要哪些材料？"}]}')
  review API tokens: reviewer1 'tg-demo-reviewer', agent1 'tg-demo-agent', super1 'tg-demo-super'
    (GET /v1/reviews, POST /v1/reviews/ID/claim, POST /v1/reviews/ID/decision, GET /v1/handoffs)
three nodes behind nginx (round robin) on $url, one PostgreSQL store:
  node 1  http://127.0.0.1:${ports[0]}/   node 2  http://127.0.0.1:${ports[1]}/   node 3  http://127.0.0.1:${ports[2]}/
  store   $store
  logs    $tmp/node{1,2,3}.log, $tmp/nginx/, $(cat "$tmp/pg/home")/log   (Ctrl-C stops all and removes $tmp)
EOF
# Until Ctrl-C, SIGTERM or one of the processes ends.
set +e
wait -n "$ngx_pid" "${node_pids[@]}"
echo "demo-cluster: a process ended; stopping the rest" >&2
exit 1
