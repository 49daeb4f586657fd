//! Interrupt messages on the APIC bus: what the IOAPIC, the ICR and (later) PCI MSI send to
//! local APICs.

use serde::{Deserialize, Serialize};

/// The 3-bit delivery mode field of IOAPIC redirection entries, LVT entries, the ICR and MSI
/// data. Encoding 3 is reserved everywhere.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    /// Start-up IPI (ICR and MSI only; the IOAPIC calls this encoding reserved).
    StartUp,
    ExtInt,
}

impl DeliveryMode {
    /// Decode the low three bits of `bits`; `None` for the reserved encoding 3.
    #[must_use]
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits & 7 {
            0 => Some(Self::Fixed),
            1 => Some(Self::LowestPriority),
            2 => Some(Self::Smi),
            4 => Some(Self::Nmi),
            5 => Some(Self::Init),
            6 => Some(Self::StartUp),
            7 => Some(Self::ExtInt),
            _ => None,
        }
    }

    /// The 3-bit encoding.
    #[must_use]
    pub fn bits(self) -> u32 {
        match self {
            Self::Fixed => 0,
            Self::LowestPriority => 1,
            Self::Smi => 2,
            Self::Nmi => 4,
            Self::Init => 5,
            Self::StartUp => 6,
            Self::ExtInt => 7,
        }
    }

    /// Fixed and lowest-priority messages carry a vector into IRR; the others are signals.
    #[must_use]
    pub fn carries_vector(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// How the destination field is matched against local APICs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationMode {
    /// Against the APIC ID; 0xFF is the broadcast.
    Physical,
    /// Against the logical destination register (flat or cluster model, per the DFR).
    Logical,
}

/// One interrupt message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicMessage {
    pub vector: u8,
    pub delivery_mode: DeliveryMode,
    pub dest_mode: DestinationMode,
    /// Destination: 8 bits in xAPIC mode (room for x2APIC's 32).
    pub dest: u32,
    /// Level-triggered: the accepting LAPIC sets the vector's TMR bit and broadcasts its EOI
    /// to the IOAPICs.
    pub level_triggered: bool,
}

/// The xAPIC physical broadcast destination.
pub const BROADCAST: u32 = 0xff;

impl ApicMessage {
    /// A fixed, edge-triggered message to a physical APIC ID.
    #[must_use]
    pub fn fixed(vector: u8, dest: u32) -> Self {
        Self {
            vector,
            delivery_mode: DeliveryMode::Fixed,
            dest_mode: DestinationMode::Physical,
            dest,
            level_triggered: false,
        }
    }

    /// Decode a PCI MSI write (address 0xFEEx_xxxx, data) into a message. `None` when the
    /// address is outside the interrupt window or the delivery mode is reserved.
    #[must_use]
    pub fn from_msi(address: u64, data: u32) -> Option<Self> {
        if address >> 20 != 0xfee {
            return None;
        }
        Some(Self {
            vector: data as u8,
            delivery_mode: DeliveryMode::from_bits(data >> 8)?,
            dest_mode: if address & (1 << 2) != 0 {
                DestinationMode::Logical
            } else {
                DestinationMode::Physical
            },
            dest: ((address >> 12) & 0xff) as u32,
            level_triggered: data & (1 << 15) != 0,
        })
    }
}

/// An IPI the ICR sent, for the machine to route: to every local APIC whose
/// [`crate::Lapic::matches`] accepts the message, the sender included unless
/// `exclude_sender` is set (the "all excluding self" shorthand).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutgoingIpi {
    pub message: ApicMessage,
    pub exclude_sender: bool,
}

/// INIT and start-up requests a local APIC received, for the machine to act on (SMP bring-up).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartupEvent {
    Init,
    /// SIPI: the AP starts in real mode at `vector << 12`.
    StartUp(u8),
}
