//! Live progress: on a terminal (a pseudo-terminal here) long work shows its bars; piped, or
//! with `--json`, nothing of it.

use std::io::Read;
use std::process::Stdio;

use crate::support::{Project, Server};

/// Run flow with a pseudo-terminal as its stdin, stdout and stderr; everything it wrote.
pub fn under_a_terminal(p: &Project, args: &[&str]) -> String {
    let size = nix::pty::Winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).expect("a pseudo-terminal");
    let fd = |f: &std::os::fd::OwnedFd| Stdio::from(f.try_clone().unwrap());
    let mut child = p.cmd(args).stdin(fd(&pty.slave)).stdout(fd(&pty.slave)).stderr(fd(&pty.slave)).spawn().unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Reading ends with EIO once the child (the last holder of the other end) exits.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    child.wait().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn bars_on_a_terminal_and_nothing_when_piped() {
    let server = Server::start();
    let p = Project::new();
    let url = server.url("/ok");
    let shown = under_a_terminal(&p, &["loadtest", &url, "--rate", "50", "--duration", "2s"]);
    assert!(
        shown.contains("loadtest")
            && shown.contains("target 50 req/s")
            && regex::Regex::new(r"ok \d+/s  errors 0/s").unwrap().is_match(&shown),
        "{shown}"
    );
    let piped = p.flow(&["loadtest", &url, "--rate", "50", "--duration", "2s"]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(!piped.stderr.contains("errors 0/s") && !piped.stdout.contains("errors 0/s"), "{}", piped.stderr);
    let json = under_a_terminal(&p, &["loadtest", &url, "--rate", "50", "--duration", "2s", "--json"]);
    assert!(!json.contains("errors 0/s"), "--json shows no bar: {json}");

    let drill = under_a_terminal(&p, &["drill", "failover", &url, "--inject", "sleep 1", "--duration", "2s"]);
    assert!(drill.contains("after the fault (command): service up, longest outage so far 0 s"), "{drill}");
}
