//! The board's interrupt wiring: every line is the wired OR of the devices driving it; ISA
//! lines reach the 8259 pair and the IOAPIC, PCI PIRQs reach both through the PIIX3's routes,
//! the IOAPIC's messages reach the local APIC, and the CPU takes interrupts from the local APIC
//! (the PIC arrives there through LINT0 in ExtINT/virtual-wire mode).

use nestor_device::pci::PIRQ_LINE_BASE;
use nestor_ioapic::Ioapic;
use nestor_lapic::{AckResult, Lapic};
use nestor_pic::Pic;
use serde::{Deserialize, Serialize};

/// Board lines: 0-15 ISA, 16-19 PCI PIRQA-D, 20-23 IOAPIC-only (HPET).
pub const LINES: usize = 24;
/// Rounds of IOAPIC/LAPIC message exchange before giving up on a storm.
const PUMP_ROUNDS: usize = 8;

/// Who may mask what: while the HPET's legacy replacement route is on, the PIT's IRQ 0 and the
/// RTC's IRQ 8 are disconnected.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineMasks {
    pub hpet_legacy: bool,
    pub pit_source: Option<u16>,
    pub rtc_source: Option<u16>,
}

/// Guest-visible state of the wiring (the levels sources drive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqState {
    /// Per line, bit n set while source n drives it high.
    pub asserted: Vec<u64>,
    /// Levels last given to the PIC (bit per ISA IRQ) and to the IOAPIC (bit per pin).
    pub pic_levels: u16,
    pub ioapic_levels: u32,
}

impl Default for IrqState {
    fn default() -> Self {
        Self {
            asserted: vec![0; LINES],
            pic_levels: 0,
            ioapic_levels: 0,
        }
    }
}

pub struct Interrupts {
    pub pic: Pic,
    pub ioapic: Ioapic,
    pub lapic: Lapic,
    pub state: IrqState,
}

impl Interrupts {
    #[must_use]
    pub fn new() -> Self {
        Self {
            pic: Pic::new(),
            ioapic: Ioapic::new(0x20),
            lapic: Lapic::new(0, true),
            state: IrqState::default(),
        }
    }

    /// Source `source` (a device index below 64) drives `line`.
    pub fn set_line(&mut self, source: u16, line: u8, level: bool) {
        let Some(bits) = self.state.asserted.get_mut(usize::from(line)) else {
            return;
        };
        let bit = 1u64 << (source % 64);
        if level {
            *bits |= bit;
        } else {
            *bits &= !bit;
        }
    }

    fn line(&self, line: usize, masks: LineMasks) -> bool {
        let mut bits = self.state.asserted.get(line).copied().unwrap_or(0);
        if masks.hpet_legacy {
            let masked = match line {
                0 => masks.pit_source,
                8 => masks.rtc_source,
                _ => None,
            };
            if let Some(s) = masked {
                bits &= !(1u64 << (s % 64));
            }
        }
        bits != 0
    }

    /// Recompute every input of the PIC and the IOAPIC and deliver what changed.
    pub fn apply(&mut self, masks: LineMasks, pirq_routes: [Option<u8>; 4]) {
        let mut isa = 0u16;
        for l in 0..16 {
            if self.line(l, masks) {
                isa |= 1 << l;
            }
        }
        let mut pins = 0u32;
        for (n, route) in (0u8..4).zip(pirq_routes) {
            if self.line(usize::from(PIRQ_LINE_BASE + n), masks) {
                pins |= 1 << (16 + n);
                if let Some(irq) = route.filter(|&irq| irq < 16) {
                    isa |= 1 << irq;
                }
            }
        }
        for l in 20..LINES {
            if self.line(l, masks) {
                pins |= 1 << l;
            }
        }
        // ISA IRQ n is IOAPIC pin n, except that IRQ 0 is wired to pin 2 (the MADT override).
        for irq in 1..16 {
            if irq != 2 && isa & (1 << irq) != 0 {
                pins |= 1 << irq;
            }
        }
        if isa & 1 != 0 {
            pins |= 1 << 2;
        }
        let changed = isa ^ self.state.pic_levels;
        for irq in (0..16u8).filter(|i| changed & (1 << i) != 0) {
            self.pic.set_irq(irq, isa & (1 << irq) != 0);
        }
        self.state.pic_levels = isa;
        let changed = pins ^ self.state.ioapic_levels;
        for pin in (0..LINES as u8).filter(|p| changed & (1 << p) != 0) {
            self.ioapic.set_irq(pin, pins & (1 << pin) != 0);
        }
        self.state.ioapic_levels = pins;
        self.pump();
    }

    /// Move messages between the IOAPIC and the local APIC until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..PUMP_ROUNDS {
            let mut moved = false;
            for m in self.ioapic.take_messages() {
                moved = true;
                if self.lapic.matches(&m) {
                    self.lapic.accept(m);
                }
            }
            for ipi in self.lapic.take_ipis() {
                moved = true;
                if !ipi.exclude_sender && self.lapic.matches(&ipi.message) {
                    self.lapic.accept(ipi.message);
                }
            }
            for v in self.lapic.take_eoi_broadcasts() {
                moved = true;
                self.ioapic.end_of_interrupt(v);
            }
            // One vCPU: INIT/SIPI have nobody to start.
            let _ = self.lapic.take_startup_events();
            if !moved {
                return;
            }
        }
    }

    /// Is an interrupt waiting for the CPU (INTR)?
    pub fn pending(&mut self) -> bool {
        self.lapic.set_lint(0, self.pic.has_interrupt());
        self.lapic.has_maskable_interrupt().is_some()
    }

    /// INTA: the vector of the interrupt the CPU takes.
    pub fn acknowledge(&mut self) -> u8 {
        self.lapic.set_lint(0, self.pic.has_interrupt());
        let vector = match self.lapic.acknowledge_maskable() {
            AckResult::Vector(v) => v,
            AckResult::ExtInt => self.pic.acknowledge(),
            // NMI is not maskable and is not taken through INTA.
            AckResult::Nmi => 2,
        };
        self.lapic.set_lint(0, self.pic.has_interrupt());
        vector
    }

    pub fn reset(&mut self) {
        use nestor_device::Device;
        self.pic.reset();
        self.ioapic.reset();
        self.lapic.reset();
        self.state = IrqState::default();
    }
}

impl Default for Interrupts {
    fn default() -> Self {
        Self::new()
    }
}
