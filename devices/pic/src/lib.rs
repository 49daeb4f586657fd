//! The two cascaded Intel 8259A programmable interrupt controllers of a PC.
//!
//! The master decodes ports 0x20/0x21 and the slave 0xA0/0xA1; the slave's INT output drives
//! the master's IR2. The chipset's edge/level control registers (ELCR, as on the PIIX) are at
//! 0x4D0 (IRQ0-7) and 0x4D1 (IRQ8-15). All of ICW1-ICW4 and OCW1-OCW3 are implemented: edge and
//! level triggering, fully nested and special fully nested modes, specific and non-specific EOI,
//! automatic EOI, priority rotation, special mask mode, poll mode, and the spurious IRQ7/IRQ15
//! vectors.
//!
//! The machine keeps the PIC as a concrete type and calls [`Pic::set_irq`],
//! [`Pic::has_interrupt`] and [`Pic::acknowledge`] directly; guest port accesses go through the
//! [`Device`] trait.

mod chip;
#[cfg(test)]
mod tests;

pub use chip::{ChipState, InitStep};

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`PicState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Master command/data ports.
pub const MASTER_PORT: u16 = 0x20;
/// Slave command/data ports.
pub const SLAVE_PORT: u16 = 0xa0;
/// ELCR ports (master, slave).
pub const ELCR_PORT: u16 = 0x4d0;

/// The master IR input the slave is wired to.
pub const CASCADE_IR: u8 = 2;

/// ELCR bits that can be set: IRQ0, 1, 2 (master) and 8, 13 (slave) are always edge triggered.
const ELCR_WRITABLE: [u8; 2] = [0xf8, 0xde];

/// Plugin descriptor (no options).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "pic8259",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Pic::new()))
}

/// Guest-visible state of both controllers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PicState {
    pub master: ChipState,
    pub slave: ChipState,
}

/// The PC's pair of 8259A interrupt controllers.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_pic::Pic;
///
/// let mut pic = Pic::new();
/// let mut ctx = FakeContext::new();
/// // The BIOS initialization: vectors 0x08 and 0x70, slave on IR2, 8086 mode.
/// for (port, value) in [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
///                       (0xa0, 0x11), (0xa1, 0x70), (0xa1, 0x02), (0xa1, 0x01)] {
///     pic.io_write(port, 1, value, &mut ctx);
/// }
/// pic.set_irq(0, true);
/// assert!(pic.has_interrupt());
/// assert_eq!(pic.acknowledge(), 0x08);
/// pic.io_write(0x20, 1, 0x20, &mut ctx); // EOI
/// pic.set_irq(8, true);
/// assert_eq!(pic.acknowledge(), 0x70);
/// ```
pub struct Pic {
    state: PicState,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// Both controllers in their power-on state.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: PicState::default(),
        }
    }

    /// A PIC with the given state.
    #[must_use]
    pub fn from_state(state: PicState) -> Self {
        Self { state }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &PicState {
        &self.state
    }

    /// Drive ISA IRQ line `line` (0..=15). IRQ2 is the cascade input and cannot be driven from
    /// outside (on the AT bus it is IRQ9); lines above 15 are ignored.
    pub fn set_irq(&mut self, line: u8, level: bool) {
        match line {
            CASCADE_IR => {}
            0..=7 => self.state.master.set_input(line, level),
            8..=15 => self.state.slave.set_input(line - 8, level),
            _ => {}
        }
        self.update_cascade();
    }

    /// Whether the master's INT output (the CPU's INTR input) is asserted.
    #[must_use]
    pub fn has_interrupt(&self) -> bool {
        self.state.master.requested(true).is_some()
    }

    /// The interrupt acknowledge cycle: the vector the CPU receives. With no request left the
    /// master answers the spurious IRQ7 vector; a slave with no request answers its IRQ15
    /// vector (and the master's IR2 is in service all the same, as on the hardware).
    pub fn acknowledge(&mut self) -> u8 {
        let master = &mut self.state.master;
        let Some(ir) = master.requested(true) else {
            return master.vector_base | 7;
        };
        master.acknowledge(ir);
        let vector = if !master.single && master.cascade & (1 << ir) != 0 {
            let slave = &mut self.state.slave;
            if slave.single || slave.cascade & 7 != ir {
                // No slave answers to this cascade address: the data bus floats.
                0xff
            } else if let Some(sir) = slave.requested(false) {
                slave.acknowledge(sir);
                slave.vector_base | sir
            } else {
                slave.vector_base | 7
            }
        } else {
            master.vector_base | ir
        };
        self.update_cascade();
        vector
    }

    /// Edge (false) or level (true) triggering of each IRQ as set in the ELCR, IRQ0 in bit 0.
    #[must_use]
    pub fn elcr(&self) -> u16 {
        u16::from(self.state.master.elcr) | (u16::from(self.state.slave.elcr) << 8)
    }

    /// Set the ELCR as firmware would (bits of always-edge IRQs are ignored).
    pub fn set_elcr(&mut self, value: u16) {
        self.write_elcr(0, value as u8);
        self.write_elcr(1, (value >> 8) as u8);
    }

    fn write_elcr(&mut self, index: usize, value: u8) {
        let (chip, writable) = match index {
            0 => (&mut self.state.master, ELCR_WRITABLE[0]),
            _ => (&mut self.state.slave, ELCR_WRITABLE[1]),
        };
        chip.elcr = value & writable;
        chip.refresh_levels();
        self.update_cascade();
    }

    /// The slave's INT output is the master's IR2 input, followed as a level.
    fn update_cascade(&mut self) {
        let slave_int = self.state.slave.requested(false).is_some();
        let master = &mut self.state.master;
        let mask = 1 << CASCADE_IR;
        if slave_int {
            master.inputs |= mask;
            master.irr |= mask;
        } else {
            master.inputs &= !mask;
            master.irr &= !mask;
        }
    }

    fn read_port(&mut self, port: u16) -> u8 {
        match port {
            0x20 => self.state.master.read_command(true),
            0x21 => self.state.master.read_data(true),
            0xa0 => self.state.slave.read_command(false),
            0xa1 => self.state.slave.read_data(false),
            0x4d0 => self.state.master.elcr,
            0x4d1 => self.state.slave.elcr,
            _ => 0xff,
        }
    }

    fn write_port(&mut self, port: u16, value: u8) {
        match port {
            0x20 => self.state.master.write_command(value),
            0x21 => self.state.master.write_data(value),
            0xa0 => self.state.slave.write_command(value),
            0xa1 => self.state.slave.write_data(value),
            0x4d0 => self.write_elcr(0, value),
            0x4d1 => self.write_elcr(1, value),
            _ => {}
        }
    }
}

impl Snapshot for Pic {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Pic {
    fn name(&self) -> &str {
        "pic"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![
            PortRange::new(MASTER_PORT, 2),
            PortRange::new(SLAVE_PORT, 2),
            PortRange::new(ELCR_PORT, 2),
        ]
    }

    fn io_read(&mut self, port: u16, size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        let value = read_bytewise(port, size, |p| self.read_port(p));
        self.update_cascade();
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, byte| self.write_port(p, byte));
        self.update_cascade();
    }

    fn reset(&mut self) {
        // The input lines are wires of the board: their levels outlive the chips' reset.
        let inputs = [self.state.master.inputs, self.state.slave.inputs];
        self.state = PicState::default();
        self.state.master.inputs = inputs[0];
        self.state.slave.inputs = inputs[1];
        self.update_cascade();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}
