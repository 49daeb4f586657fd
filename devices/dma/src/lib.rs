//! The PC/AT's two Intel 8237A DMA controllers and the 74LS612 page registers.
//!
//! Controller 1 (ports 0x00-0x0F) serves the 8-bit channels 0-3; controller 2 (ports 0xC0-0xDF,
//! registers on even ports) serves the 16-bit channels 4-7, counting words, with channel 4
//! cascading controller 1. Page registers (0x81-0x8F) supply address bits 16-23.
//!
//! Devices cannot call each other, so an ISA device that uses DMA (the floppy controller,
//! later the Sound Blaster) does not drive DREQ: the machine, which owns both, calls
//! [`Dma::transfer`] on the device's behalf with the device's data, and tells the device how
//! many bytes moved and whether the channel reached terminal count (the TC line).

mod controller;
#[cfg(test)]
mod tests;

pub use controller::{ChannelState, ControllerState, TransferType};

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`DmaState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Plugin descriptor (no options).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "dma8237",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Dma::new()))
}

/// Page register port (offset from 0x80) of each channel; channel 4 has none (cascade).
const PAGE_PORT: [u8; 8] = [0x7, 0x3, 0x1, 0x2, 0xf, 0xb, 0x9, 0xa];

/// Guest-visible state of both controllers and the page registers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DmaState {
    /// 8-bit channels 0-3.
    pub controller1: ControllerState,
    /// 16-bit channels 4-7 (channel 4 cascades controller 1).
    pub controller2: ControllerState,
    /// The page register file, indexed by port - 0x80 (index 0 is the POST port, not ours).
    pub page_registers: Vec<u8>,
}

impl Default for DmaState {
    fn default() -> Self {
        Self {
            controller1: ControllerState::default(),
            controller2: ControllerState::default(),
            page_registers: vec![0; 16],
        }
    }
}

/// What one [`Dma::transfer`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaTransfer {
    /// Bytes moved (or counted, for a verify transfer).
    pub bytes: usize,
    /// The channel's count ran out: the device sees TC and ends its operation.
    pub terminal_count: bool,
}

/// Both DMA controllers.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_dma::Dma;
///
/// let mut dma = Dma::new();
/// let mut ctx = FakeContext::with_ram(0x2_0000);
/// let out = |dma: &mut Dma, ctx: &mut FakeContext, port, v| dma.io_write(port, 1, v, ctx);
/// out(&mut dma, &mut ctx, 0xd6, 0xc0); // channel 4: cascade
/// out(&mut dma, &mut ctx, 0xd4, 0x00); // unmask channel 4
/// out(&mut dma, &mut ctx, 0x0b, 0x46); // channel 2: single, increment, write to memory
/// out(&mut dma, &mut ctx, 0x0c, 0); // clear the flip-flop
/// out(&mut dma, &mut ctx, 0x04, 0x00); // address 0x1000, low then high
/// out(&mut dma, &mut ctx, 0x04, 0x10);
/// out(&mut dma, &mut ctx, 0x81, 0x01); // page 1: physical 0x11000
/// out(&mut dma, &mut ctx, 0x05, 3); // count 4 bytes (N - 1)
/// out(&mut dma, &mut ctx, 0x05, 0);
/// out(&mut dma, &mut ctx, 0x0a, 0x02); // unmask channel 2
/// let done = dma.transfer(2, &mut [1, 2, 3, 4, 5], &mut ctx);
/// assert_eq!((done.bytes, done.terminal_count), (4, true));
/// assert_eq!(ctx.ram[0x11000..0x11004], [1, 2, 3, 4]);
/// ```
pub struct Dma {
    state: DmaState,
}

impl Default for Dma {
    fn default() -> Self {
        Self::new()
    }
}

impl Dma {
    /// Both controllers after power-on (every channel masked).
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: DmaState::default(),
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &DmaState {
        &self.state
    }

    fn page(&self, channel: u8) -> u8 {
        PAGE_PORT
            .get(usize::from(channel))
            .and_then(|&p| self.state.page_registers.get(usize::from(p)))
            .copied()
            .unwrap_or(0)
    }

    /// The controller and its channel for a channel number 0-7.
    fn split(&mut self, channel: u8) -> Option<(&mut ControllerState, usize)> {
        match channel {
            0..=3 => Some((&mut self.state.controller1, usize::from(channel))),
            4..=7 => Some((&mut self.state.controller2, usize::from(channel - 4))),
            _ => None,
        }
    }

    /// Whether a transfer on `channel` would move data now: the channel is unmasked, its
    /// controller enabled and, for channels 0-3, the cascade channel 4 is unmasked too.
    #[must_use]
    pub fn ready(&self, channel: u8) -> bool {
        let c2 = &self.state.controller2;
        let (ctrl, index) = match channel {
            0..=3 => {
                if !c2.enabled() || c2.channel(0).is_none_or(|c| c.masked) {
                    return false;
                }
                (&self.state.controller1, usize::from(channel))
            }
            5..=7 => (c2, usize::from(channel - 4)),
            _ => return false,
        };
        ctrl.enabled() && ctrl.channel(index).is_some_and(|c| !c.masked)
    }

    /// What the guest programmed `channel` to do (`None` for a channel number above 7).
    #[must_use]
    pub fn transfer_type(&self, channel: u8) -> Option<TransferType> {
        let (ctrl, index) = match channel {
            0..=3 => (&self.state.controller1, usize::from(channel)),
            4..=7 => (&self.state.controller2, usize::from(channel - 4)),
            _ => return None,
        };
        ctrl.channel(index).map(ChannelState::transfer_type)
    }

    /// Move data for the device on `channel`, as its DREQ would, until `buf` is used up or the
    /// channel reaches terminal count. The channel's programmed mode decides the direction:
    /// a write transfer copies `buf` into guest memory, a read transfer fills `buf` from guest
    /// memory, a verify transfer only counts. Channels 5-7 move whole 16-bit words (an odd
    /// last byte of `buf` is left alone). A masked channel moves nothing.
    pub fn transfer(
        &mut self,
        channel: u8,
        buf: &mut [u8],
        ctx: &mut dyn DeviceContext,
    ) -> DmaTransfer {
        if !self.ready(channel) {
            return DmaTransfer::default();
        }
        let page = self.page(channel);
        let Some((ctrl, index)) = self.split(channel) else {
            return DmaTransfer::default();
        };
        let word = channel >= 4;
        ctrl.transfer(index, page, word, buf, ctx)
    }

    fn read_port(&mut self, port: u16) -> u8 {
        match port {
            0x00..=0x0f => self.state.controller1.read(port as u8),
            0xc0..=0xdf if port & 1 == 0 => self.state.controller2.read(((port - 0xc0) >> 1) as u8),
            0x81..=0x8f => self
                .state
                .page_registers
                .get(usize::from(port - 0x80))
                .copied()
                .unwrap_or(0xff),
            _ => 0xff,
        }
    }

    fn write_port(&mut self, port: u16, value: u8) {
        match port {
            0x00..=0x0f => self.state.controller1.write(port as u8, value),
            0xc0..=0xdf if port & 1 == 0 => self
                .state
                .controller2
                .write(((port - 0xc0) >> 1) as u8, value),
            0x81..=0x8f => {
                if let Some(r) = self.state.page_registers.get_mut(usize::from(port - 0x80)) {
                    *r = value;
                }
            }
            _ => {}
        }
    }
}

impl Snapshot for Dma {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: DmaState = restore_state(STATE_VERSION, bytes)?;
        if state.page_registers.len() != 16 {
            return Err(StateError::Decode(
                "page register file is not 16 bytes".into(),
            ));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for Dma {
    fn name(&self) -> &str {
        "dma"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![
            PortRange::new(0x00, 0x10),
            PortRange::new(0x81, 0x0f),
            PortRange::new(0xc0, 0x20),
        ]
    }

    fn io_read(&mut self, port: u16, size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        read_bytewise(port, size, |p| self.read_port(p))
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, b| self.write_port(p, b));
    }

    fn reset(&mut self) {
        self.state = DmaState::default();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}
