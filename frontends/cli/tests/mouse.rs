//! The PS/2 mouse from the guest's side, headless: host motion and buttons go into the
//! i8042's input queue (as the SDL window puts them) and the mouse probe ROM
//! (`nestor_roms::mouse_probe`, which enables the mouse as a driver does and prints each
//! IRQ12 packet on port 0xE9) shows what the guest received. Packets are decoded here by the
//! PS/2 format (byte 0: buttons in bits 0-2, bit 3 always set, X/Y sign in bits 4/5; Y
//! positive up), not by Nestor's code.

use nestor_device::CharBackend;
use nestor_i8042::{buttons, I8042};
use nestor_machine::{Machine, MachineConfig, MachineExit};
use std::sync::{Arc, Mutex};

/// The debug console's bytes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl CharBackend for Captured {
    fn write(&mut self, bytes: &[u8]) {
        self.0.lock().expect("capture").extend_from_slice(bytes);
    }
    fn read(&mut self) -> Option<u8> {
        None
    }
    fn has_input(&self) -> bool {
        false
    }
}

/// A decoded PS/2 packet: movement (Y positive up, as PS/2 counts it) and buttons.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet {
    pub dx: i32,
    pub dy: i32,
    pub buttons: u8,
}

/// "packet HH HH HH" lines of the probe's output, decoded.
pub fn packets(text: &str) -> Vec<Packet> {
    text.lines()
        .filter_map(|l| l.strip_prefix("packet "))
        .map(|hex| {
            let b: Vec<u8> = hex
                .split(' ')
                .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
                .collect();
            assert_eq!(b.len(), 3, "{hex}");
            assert_ne!(b[0] & 0x08, 0, "bit 3 of the first byte: {hex}");
            let nine_bit =
                |low: u8, negative: bool| i32::from(low) - if negative { 256 } else { 0 };
            Packet {
                dx: nine_bit(b[1], b[0] & 0x10 != 0),
                dy: nine_bit(b[2], b[0] & 0x20 != 0),
                buttons: b[0] & 0x07,
            }
        })
        .collect()
}

struct Probe {
    machine: Machine,
    out: Captured,
    spent: u64,
}

impl Probe {
    fn start() -> Self {
        let out = Captured::default();
        let mut config = MachineConfig::new(nestor_roms::mouse_probe().to_vec(), 4);
        config.debugcon = Some(Box::new(out.clone()));
        let mut probe = Self {
            machine: Machine::new(config).expect("machine"),
            out,
            spent: 0,
        };
        probe.run();
        assert_eq!(probe.text(), "mouse ready\n");
        probe
    }

    fn run(&mut self) {
        self.spent += 1_000_000;
        let exit = self.machine.run(Some(self.spent)).expect("run");
        assert_eq!(exit, MachineExit::BudgetExhausted);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.0.lock().expect("capture")).into_owned()
    }

    /// Host motion (`dy` positive down, as window systems count it) and buttons.
    fn host(&mut self, dx: i32, dy: i32, held: u8) {
        let kbc = self.machine.board.device_mut::<I8042>().expect("i8042");
        kbc.mouse_event(dx, dy, 0, held);
        self.run();
    }
}

#[test]
fn mouse_packets_reach_the_guest_with_their_signs_and_buttons() {
    let mut p = Probe::start();
    p.host(5, 0, 0);
    p.host(-3, 0, 0);
    p.host(0, 4, 0); // down on the screen: negative Y for PS/2
    p.host(0, -2, 0); // up
    p.host(-7, -9, 0);
    p.host(0, 0, buttons::LEFT);
    p.host(0, 0, 0);
    p.host(0, 0, buttons::RIGHT);
    p.host(2, 1, buttons::RIGHT | buttons::MIDDLE); // a drag with two buttons held
    p.host(0, 0, 0);
    let want = [
        (5, 0, 0),
        (-3, 0, 0),
        (0, -4, 0),
        (0, 2, 0),
        (-7, 9, 0),
        (0, 0, 1),
        (0, 0, 0),
        (0, 0, 2),
        (2, -1, 6),
        (0, 0, 0),
    ]
    .map(|(dx, dy, buttons)| Packet { dx, dy, buttons });
    assert_eq!(packets(&p.text()), want, "{}", p.text());
}

#[test]
fn large_moves_keep_their_sign() {
    // 300 counts do not fit in 9 bits: the packet says +255 (overflow) or -256, never a
    // wrapped value of the other sign.
    let mut p = Probe::start();
    p.host(300, -300, 0);
    let got = packets(&p.text());
    assert_eq!(got.len(), 1, "{}", p.text());
    assert!(got[0].dx > 200, "{got:?}");
    assert!(got[0].dy > 200, "{got:?}");
}

#[test]
fn no_packets_before_the_guest_enables_the_mouse() {
    // The host moves the mouse before the probe has run a single instruction: the mouse is
    // not reporting yet, so the guest sees no stale packet once it enables it.
    let out = Captured::default();
    let mut config = MachineConfig::new(nestor_roms::mouse_probe().to_vec(), 4);
    config.debugcon = Some(Box::new(out.clone()));
    let mut machine = Machine::new(config).expect("machine");
    if let Some(kbc) = machine.board.device_mut::<I8042>() {
        kbc.mouse_event(10, 10, 0, buttons::LEFT);
    }
    machine.run(Some(2_000_000)).expect("run");
    let text = String::from_utf8_lossy(&out.0.lock().expect("capture")).into_owned();
    assert_eq!(text, "mouse ready\n");
}
