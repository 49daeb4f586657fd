//! The PS/2 keyboard behind the 8042's first port: its commands, scan code sets, LEDs and
//! typematic repeat in virtual time.

use crate::keys::{break_codes, make_codes, Key};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Bytes the keyboard buffers for the controller before it reports an overrun.
pub const QUEUE_CAPACITY: usize = 64;

/// Typematic byte after reset: 10.9 characters per second, 500 ms delay.
pub const DEFAULT_TYPEMATIC: u8 = 0x2b;

const ACK: u8 = 0xfa;
const RESEND: u8 = 0xfe;
const BAT_OK: u8 = 0xaa;
const ECHO: u8 = 0xee;

/// Guest-visible state of the keyboard.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KeyboardState {
    /// Keys are reported (0xF4 enables, 0xF5 disables).
    pub scanning: bool,
    /// Scan code set in use: 1, 2 or 3.
    pub scan_set: u8,
    /// LED bits from 0xED: 0 Scroll Lock, 1 Num Lock, 2 Caps Lock.
    pub leds: u8,
    /// Typematic rate and delay byte from 0xF3.
    pub typematic: u8,
    /// A command waiting for its argument byte.
    pub pending: Option<u8>,
    /// Bytes waiting to go to the controller, oldest first.
    pub queue: VecDeque<u8>,
    /// The last byte handed to the controller, for 0xFE (resend).
    pub last_sent: u8,
    /// The key that repeats while held (the last one pressed).
    pub held: Option<Key>,
    /// Virtual time (ns) of the held key's next repeat.
    pub repeat_at_ns: u64,
}

impl Default for KeyboardState {
    fn default() -> Self {
        Self {
            scanning: true,
            scan_set: 2,
            leds: 0,
            typematic: DEFAULT_TYPEMATIC,
            pending: None,
            queue: VecDeque::new(),
            last_sent: 0,
            held: None,
            repeat_at_ns: 0,
        }
    }
}

impl KeyboardState {
    fn send(&mut self, byte: u8) {
        if self.queue.len() < QUEUE_CAPACITY {
            self.queue.push_back(byte);
        }
    }

    fn send_all(&mut self, bytes: &[u8]) {
        // A sequence that does not fit is replaced by the overrun code, as a keyboard does.
        if self.queue.len() + bytes.len() <= QUEUE_CAPACITY {
            self.queue.extend(bytes);
        } else if self.queue.len() < QUEUE_CAPACITY && self.queue.back() != Some(&0) {
            let overrun = if self.scan_set == 1 { 0xff } else { 0x00 };
            self.queue.push_back(overrun);
        }
    }

    /// Defaults of 0xF6: set 2, default typematic, no key repeating. LEDs are left alone.
    fn set_defaults(&mut self) {
        self.scan_set = 2;
        self.typematic = DEFAULT_TYPEMATIC;
        self.held = None;
    }

    /// The next byte for the controller.
    pub fn pop(&mut self) -> Option<u8> {
        let byte = self.queue.pop_front()?;
        self.last_sent = byte;
        Some(byte)
    }

    /// A byte from the host (written to port 0x60).
    pub fn receive(&mut self, byte: u8) {
        if let Some(command) = self.pending.take() {
            if self.argument(command, byte) {
                return;
            }
        }
        if matches!(byte, 0xf4..=0xf6 | 0xff) {
            // Enable, disable, defaults and reset first drop what was not sent yet.
            self.queue.clear();
        }
        self.command(byte);
    }

    fn command(&mut self, byte: u8) {
        match byte {
            0xed | 0xf0 | 0xf3 | 0xfb..=0xfd => {
                self.send(ACK);
                self.pending = Some(byte);
            }
            0xee => self.send(ECHO),
            0xf2 => self.send_all(&[ACK, 0xab, 0x83]),
            0xf4 => {
                self.send(ACK);
                self.scanning = true;
            }
            0xf5 => {
                self.send(ACK);
                self.set_defaults();
                self.scanning = false;
            }
            0xf6 => {
                self.send(ACK);
                self.set_defaults();
            }
            // Set 3 "all keys typematic / make-break / make only": accepted, not modelled.
            0xf7..=0xfa => self.send(ACK),
            0xfe => {
                let last = self.last_sent;
                self.send(last);
            }
            0xff => {
                self.send(ACK);
                self.set_defaults();
                self.leds = 0;
                self.scanning = true;
                self.send(BAT_OK);
            }
            _ => self.send(RESEND),
        }
    }

    /// The argument of a pending command. Returns false when `byte` is a new command instead.
    fn argument(&mut self, command: u8, byte: u8) -> bool {
        if byte >= 0xed {
            return false;
        }
        match command {
            0xed => self.leds = byte & 7,
            0xf3 => self.typematic = byte & 0x7f,
            0xf0 => match byte {
                0 => {
                    let set = self.scan_set;
                    self.send_all(&[ACK, set]);
                    return true;
                }
                1..=3 => self.scan_set = byte,
                _ => {
                    self.send(RESEND);
                    return true;
                }
            },
            // Set 3 per-key types: every following byte is a key until a command comes.
            _ => self.pending = Some(command),
        }
        self.send(ACK);
        true
    }

    /// Delay before the first repeat, from bits 5-6 of the typematic byte.
    #[must_use]
    pub fn repeat_delay_ns(&self) -> u64 {
        (1 + u64::from((self.typematic >> 5) & 3)) * 250_000_000
    }

    /// Time between repeats: (8 + A) * 2^B * 4.17 ms from bits 0-2 (A) and 3-4 (B).
    #[must_use]
    pub fn repeat_period_ns(&self) -> u64 {
        let a = u64::from(self.typematic & 7);
        let b = u32::from((self.typematic >> 3) & 3);
        (8 + a) * (1u64 << b) * 4_170_000
    }

    /// A key went down or up on the host side at virtual time `now`.
    pub fn key(&mut self, key: Key, pressed: bool, now: u64) {
        if !self.scanning {
            return;
        }
        if pressed {
            self.send_all(&make_codes(key, self.scan_set));
            if key.repeats() {
                self.held = Some(key);
                self.repeat_at_ns = now.saturating_add(self.repeat_delay_ns());
            }
        } else {
            self.send_all(&break_codes(key, self.scan_set));
            if self.held == Some(key) {
                self.held = None;
            }
        }
    }

    /// When the held key repeats next, if one does.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        self.held
            .filter(|_| self.scanning)
            .map(|_| self.repeat_at_ns)
    }

    /// Send the repeat that is due at `now`; a repeat missed by far is sent once.
    pub fn tick(&mut self, now: u64) {
        let Some(key) = self.held.filter(|_| self.scanning) else {
            return;
        };
        if now < self.repeat_at_ns {
            return;
        }
        self.send_all(&make_codes(key, self.scan_set));
        let period = self.repeat_period_ns();
        self.repeat_at_ns = self.repeat_at_ns.saturating_add(period);
        if self.repeat_at_ns <= now {
            self.repeat_at_ns = now.saturating_add(period);
        }
    }
}
