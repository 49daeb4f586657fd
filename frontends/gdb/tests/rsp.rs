//! The stub spoken to in raw remote-serial-protocol packets (no gdb needed): the target
//! description, the fixed 'g' packet size, a breakpoint kept by the emulator, Ctrl-C while
//! the guest runs, and kill.

use nestor_gdb::arch::X86Regs;
use nestor_gdb::{run_with_gdb, GdbOutcome};
use nestor_machine::{Machine, MachineConfig};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A ROM whose reset vector is `jmp $`: the guest spins at linear 0xfffffff0 for ever.
fn spin_machine() -> Machine {
    let mut rom = vec![0u8; 64 << 10];
    rom[0xfff0..0xfff2].copy_from_slice(&[0xeb, 0xfe]);
    Machine::new(MachineConfig::new(rom, 2)).expect("machine")
}

struct Client(TcpStream);

impl Client {
    fn send(&mut self, body: &str) {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let pkt = format!("${body}#{sum:02x}");
        self.0.write_all(pkt.as_bytes()).expect("send");
    }

    /// The next packet's body, acknowledged, with run-length encoding expanded.
    fn reply(&mut self) -> String {
        let mut body = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            self.0.read_exact(&mut byte).expect("read");
            if byte[0] == b'$' {
                break;
            }
        }
        loop {
            self.0.read_exact(&mut byte).expect("read");
            if byte[0] == b'#' {
                break;
            }
            body.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.0.read_exact(&mut sum).expect("checksum");
        self.0.write_all(b"+").expect("ack");
        expand_rle(&body)
    }

    fn ask(&mut self, body: &str) -> String {
        self.send(body);
        self.reply()
    }
}

fn expand_rle(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = *out.last().expect("a run follows a character");
            out.extend(std::iter::repeat_n(last, usize::from(body[i + 1] - 29)));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn client_session(port: u16) {
    let mut c = Client(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let features = c.ask("qSupported:swbreak+;hwbreak+");
    assert!(features.contains("qXfer:features:read+"), "{features}");
    assert!(c.ask("?").starts_with('T'), "stopped when gdb connects");
    let xml = c.ask("qXfer:features:read:target.xml:0,ffff");
    assert!(
        xml.contains("<architecture>i386:x86-64</architecture>"),
        "{xml}"
    );
    let regs = c.ask("g");
    assert_eq!(regs.len(), 2 * X86Regs::packet_len(), "{regs}");
    // rip (bytes 128..136) is the linear reset vector.
    assert_eq!(&regs[256..272], "f0ffffff00000000");
    assert_eq!(c.ask("Z0,fffffff0,1"), "OK");
    let stop = c.ask("c");
    assert!(
        stop.starts_with("T05"),
        "the spin loop comes back round: {stop}"
    );
    assert!(stop.contains("swbreak"), "{stop}");
    assert_eq!(c.ask("z0,fffffff0,1"), "OK");
    c.send("c");
    c.0.write_all(&[0x03]).expect("ctrl-c");
    let stop = c.reply();
    assert!(stop.starts_with("S02") || stop.starts_with("T02"), "{stop}");
    assert_eq!(c.ask("g").len(), regs.len(), "same layout after running");
    c.send("k");
}

#[test]
fn raw_protocol_session() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = std::thread::spawn(move || client_session(port));
    let mut machine = spin_machine();
    // A budget, so that a client that fails early cannot leave the guest spinning for ever.
    let outcome = run_with_gdb(&mut machine, &listener, true, Some(100_000_000));
    client.join().expect("client assertions");
    assert_eq!(outcome.expect("session"), GdbOutcome::Killed);
}
