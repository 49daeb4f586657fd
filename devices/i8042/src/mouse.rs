//! The PS/2 mouse behind the 8042's auxiliary port: stream and remote modes, wrap mode,
//! sample rate, resolution, scaling, status, and the IntelliMouse (wheel, ID 3) and
//! IntelliMouse Explorer (wheel and buttons 4/5, ID 4) extensions.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Bytes the mouse buffers for the controller; a packet that does not fit is dropped.
pub const QUEUE_CAPACITY: usize = 256;

const ACK: u8 = 0xfa;
const RESEND: u8 = 0xfe;

/// Mouse buttons as [`crate::I8042::mouse_event`] takes them.
pub mod buttons {
    pub const LEFT: u8 = 0x01;
    pub const RIGHT: u8 = 0x02;
    pub const MIDDLE: u8 = 0x04;
    /// Fourth and fifth buttons, reported once the guest enabled the Explorer protocol.
    pub const BUTTON4: u8 = 0x08;
    pub const BUTTON5: u8 = 0x10;
}

/// Guest-visible state of the mouse.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MouseState {
    /// Data reporting enabled (0xF4) in stream mode.
    pub reporting: bool,
    /// Remote mode (0xF0): movement is only sent on 0xEB.
    pub remote: bool,
    /// Wrap (echo) mode (0xEE).
    pub wrap: bool,
    /// 2:1 scaling (0xE7) instead of 1:1.
    pub scaling_2to1: bool,
    /// Samples per second (0xF3).
    pub sample_rate: u8,
    /// Resolution code 0-3 (1, 2, 4, 8 counts per mm).
    pub resolution: u8,
    /// Device ID: 0 standard, 3 IntelliMouse, 4 IntelliMouse Explorer.
    pub id: u8,
    /// The last three sample rates set, oldest first: the knock sequence of the extensions.
    pub recent_rates: [u8; 3],
    /// Buttons held (bits as in [`buttons`]).
    pub buttons: u8,
    /// Movement not reported yet (PS/2 directions: y and z positive up).
    pub dx: i32,
    pub dy: i32,
    pub dz: i32,
    /// A command waiting for its argument byte.
    pub pending: Option<u8>,
    /// Bytes waiting to go to the controller, oldest first.
    pub queue: VecDeque<u8>,
    /// The last byte handed to the controller, for 0xFE (resend).
    pub last_sent: u8,
}

impl Default for MouseState {
    fn default() -> Self {
        Self {
            reporting: false,
            remote: false,
            wrap: false,
            scaling_2to1: false,
            sample_rate: 100,
            resolution: 2,
            id: 0,
            recent_rates: [0; 3],
            buttons: 0,
            dx: 0,
            dy: 0,
            dz: 0,
            pending: None,
            queue: VecDeque::new(),
            last_sent: 0,
        }
    }
}

/// Accumulated movement is kept within this bound so that no arithmetic overflows.
const MAX_ACCUMULATED: i32 = 1 << 20;

impl MouseState {
    fn send(&mut self, byte: u8) {
        if self.queue.len() < QUEUE_CAPACITY {
            self.queue.push_back(byte);
        }
    }

    fn send_all(&mut self, bytes: &[u8]) {
        if self.queue.len() + bytes.len() <= QUEUE_CAPACITY {
            self.queue.extend(bytes);
        }
    }

    /// Defaults of 0xF6: stream mode, reporting off, 100 samples/s, 4 counts/mm, 1:1.
    fn set_defaults(&mut self) {
        *self = Self {
            id: self.id,
            buttons: self.buttons,
            queue: std::mem::take(&mut self.queue),
            last_sent: self.last_sent,
            ..Self::default()
        };
    }

    /// The next byte for the controller.
    pub fn pop(&mut self) -> Option<u8> {
        let byte = self.queue.pop_front()?;
        self.last_sent = byte;
        Some(byte)
    }

    /// A byte from the host (controller command 0xD4 followed by the byte).
    pub fn receive(&mut self, byte: u8) {
        if self.wrap && byte != 0xec && byte != 0xff {
            self.send(byte);
            return;
        }
        if let Some(command) = self.pending.take() {
            self.argument(command, byte);
            return;
        }
        if matches!(byte, 0xf4..=0xf6 | 0xff) {
            // Enable, disable, defaults and reset first drop packets not sent yet.
            self.queue.clear();
        }
        self.command(byte);
    }

    fn argument(&mut self, command: u8, byte: u8) {
        if command == 0xf3 {
            self.sample_rate = byte;
            self.recent_rates = [self.recent_rates[1], self.recent_rates[2], byte];
            match (self.id, self.recent_rates) {
                (0, [200, 100, 80]) => self.id = 3,
                (3, [200, 200, 80]) => self.id = 4,
                _ => {}
            }
        } else {
            self.resolution = byte & 3;
        }
        self.send(ACK);
    }

    fn command(&mut self, byte: u8) {
        match byte {
            0xe6 | 0xe7 => {
                self.scaling_2to1 = byte == 0xe7;
                self.send(ACK);
            }
            0xe8 | 0xf3 => {
                self.pending = Some(byte);
                self.send(ACK);
            }
            0xe9 => {
                let status = self.status_byte();
                self.send_all(&[ACK, status, self.resolution, self.sample_rate]);
            }
            0xea | 0xf0 => {
                self.remote = byte == 0xf0;
                self.clear_motion();
                self.send(ACK);
            }
            0xeb => {
                self.send(ACK);
                self.send_packet(false);
            }
            0xec | 0xee => {
                self.wrap = byte == 0xee;
                self.send(ACK);
            }
            0xf2 => self.send_all(&[ACK, self.id]),
            0xf4 | 0xf5 => {
                self.reporting = byte == 0xf4;
                self.clear_motion();
                self.send(ACK);
            }
            0xf6 => {
                self.set_defaults();
                self.send(ACK);
            }
            0xfe => {
                let last = self.last_sent;
                self.send(last);
            }
            0xff => {
                self.set_defaults();
                self.id = 0;
                self.recent_rates = [0; 3];
                self.send_all(&[ACK, 0xaa, 0x00]);
            }
            _ => self.send(RESEND),
        }
    }

    fn status_byte(&self) -> u8 {
        let b = self.buttons;
        u8::from(self.remote) << 6
            | u8::from(self.reporting) << 5
            | u8::from(self.scaling_2to1) << 4
            | (b & buttons::LEFT) << 2
            | (b & buttons::MIDDLE) >> 1
            | (b & buttons::RIGHT) >> 1
    }

    fn clear_motion(&mut self) {
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
    }

    /// Movement from the host: `dy` positive down and `dz` positive for the wheel turned away
    /// from the user, as window systems report them.
    pub fn motion(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        let bound = |v: i32| v.clamp(-MAX_ACCUMULATED, MAX_ACCUMULATED);
        self.buttons = buttons & 0x1f;
        self.dx = bound(self.dx.saturating_add(bound(dx)));
        self.dy = bound(self.dy.saturating_sub(bound(dy)));
        self.dz = bound(self.dz.saturating_add(bound(dz)));
        if self.remote {
            return;
        }
        if self.reporting {
            self.send_packet(true);
        } else {
            self.clear_motion();
        }
    }

    /// Queue one movement packet of the current protocol and clear the counters.
    fn send_packet(&mut self, stream: bool) {
        let scale = |v: i32| {
            if !(stream && self.scaling_2to1) {
                return v;
            }
            // The 2:1 curve: 1→1, 2→1, 3→3, 4→6, 5→9, then twice the count.
            let m = v.abs();
            let s = match m {
                0..=1 => m,
                2 => 1,
                3 => 3,
                4 => 6,
                5 => 9,
                _ => m * 2,
            };
            s * v.signum()
        };
        let (x, x_over) = nine_bit(scale(self.dx));
        let (y, y_over) = nine_bit(scale(self.dy));
        let mut head = 0x08 | (self.buttons & 7);
        head |= u8::from(x < 0) << 4 | u8::from(y < 0) << 5;
        head |= u8::from(x_over) << 6 | u8::from(y_over) << 7;
        // PS/2 counts the wheel positive towards the user.
        let z = -self.dz;
        let mut packet = vec![head, x as u8, y as u8];
        match self.id {
            3 => packet.push(z.clamp(-8, 7) as u8),
            4 => packet.push((z.clamp(-8, 7) as u8 & 0x0f) | (self.buttons & 0x18) << 1),
            _ => {}
        }
        self.send_all(&packet);
        self.clear_motion();
    }
}

/// A count as the 9-bit two's complement value of a packet, and whether it overflowed.
fn nine_bit(v: i32) -> (i32, bool) {
    (v.clamp(-256, 255), !(-256..=255).contains(&v))
}
