//! Start-up timer: polls `GET /readyz` on a loopback address every millisecond and prints how
//! many milliseconds passed (since this program started) until it answered 200. `bench/run.sh`
//! starts it right after starting the server, so that is the server's start → ready time.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

/// Command line of the start-up timer.
#[derive(Parser)]
struct Args {
    /// The server's address: loopback only.
    #[arg(long)]
    addr: SocketAddr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Time between two polls.
const POLL: Duration = Duration::from_millis(1);

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let request = "GET /readyz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn main() {
    let args = Args::parse();
    assert!(
        args.addr.ip().is_loopback(),
        "readyz only polls loopback addresses"
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(args.timeout) {
        if ready(args.addr) {
            println!("{:.1}", start.elapsed().as_secs_f64() * 1000.0);
            return;
        }
        std::thread::sleep(POLL);
    }
    eprintln!("not ready after {} s", args.timeout);
    std::process::exit(1);
}
