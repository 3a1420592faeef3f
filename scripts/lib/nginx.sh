# One local nginx (127.0.0.1 only, one worker process, keep-alive without limits, `hello` on
# every path) for the load benchmarks. Source it, then `start_nginx`: it sets $work (a temporary
# directory, also for the caller's files), $port and $URL, and `stop_nginx` stops it and removes
# $work (call it from the caller's EXIT trap). Installs nginx (Debian) when missing.
start_nginx() {
  command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 65536; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$port backlog=65535 reuseport;
    location / { return 200 "hello\n"; }
  }
}
CONF
  nginx -c "$work/nginx.conf" -p "$work" -g 'daemon on;'
  URL=http://127.0.0.1:$port/
  sleep 0.5
}

stop_nginx() {
  nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null || true
  rm -rf "$work"
}
