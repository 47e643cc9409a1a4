//! The floor under every delivery: what the kernel charges to move one small frame over a
//! loopback TCP connection, one `write` per frame (as a WebSocket server writes a push to
//! a socket that has nothing else queued) and reads of up to 64 KiB (as a client reads).
//! Prints CPU µs per frame, user and kernel, of both ends together (one process, two
//! threads), read from `/proc/self/stat`, twice: frames sent back to back (the reader
//! finds several per read), and frames that each wake their reader (ping-pong: one frame
//! each way per round, halved), which is what a push to an otherwise idle client costs.
//!
//! `cargo run --release --example loopback_floor [FRAMES] [BYTES]` (default 200,000 × 150 B).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// (user, system) CPU time of this process, µs (the kernel's 100 ticks per second).
fn cpu_us() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = stat.rsplit_once(')').expect("a command name").1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().expect("a number"))
        .collect();
    (f[0] * 10_000, f[1] * 10_000)
}

/// One frame each way per round, `rounds` times: CPU µs per frame (user, kernel).
fn ping_pong(rounds: u64, bytes: usize) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut buf = vec![0u8; bytes];
        for _ in 0..rounds {
            s.read_exact(&mut buf).expect("read");
            s.write_all(&buf).expect("write");
        }
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut buf = vec![b'x'; bytes];
    let (u0, s0) = cpu_us();
    for _ in 0..rounds {
        c.write_all(&buf).expect("write");
        c.read_exact(&mut buf).expect("read");
    }
    echo.join().expect("echo");
    let (u1, s1) = cpu_us();
    let frames = (2 * rounds) as f64;
    ((u1 - u0) as f64 / frames, (s1 - s0) as f64 / frames)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let frames: u64 = args.next().map_or(200_000, |v| v.parse().expect("FRAMES"));
    let bytes: usize = args.next().map_or(150, |v| v.parse().expect("BYTES"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let total = frames * bytes as u64;
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 64 * 1024];
        let (mut got, mut reads) = (0u64, 0u64);
        while got < total {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "closed early");
            got += n as u64;
            reads += 1;
        }
        reads
    });
    let mut w = TcpStream::connect(addr).expect("connect");
    w.set_nodelay(true).expect("nodelay");
    let frame = vec![b'x'; bytes];
    let (u0, s0) = cpu_us();
    let t0 = Instant::now();
    for _ in 0..frames {
        w.write_all(&frame).expect("write");
    }
    let reads = reader.join().expect("reader");
    let wall = t0.elapsed();
    let (u1, s1) = cpu_us();
    let per = |us: u64| us as f64 / frames as f64;
    println!(
        "{frames} frames of {bytes} B over loopback TCP in {:.2} s ({:.0} frames/s; {reads} reads)",
        wall.as_secs_f64(),
        frames as f64 / wall.as_secs_f64()
    );
    println!(
        "CPU per frame, both ends: {:.2} µs user + {:.2} µs kernel = {:.2} µs  (= {:.2} ms per 1,000)",
        per(u1 - u0),
        per(s1 - s0),
        per(u1 - u0 + s1 - s0),
        per(u1 - u0 + s1 - s0)
    );
    let (u, k) = ping_pong(frames / 4, bytes);
    println!(
        "CPU per frame when each frame wakes its reader (ping-pong): {u:.2} µs user + {k:.2} µs kernel = {:.2} µs",
        u + k
    );
}
