//! The machine's state as notes and back: the vCPU, the board and its interrupt wiring, every
//! device keyed by its stable name with its state version, the clock, the BIOS's host side,
//! the firmware image and the configuration.

use super::notes::{self, kind, push_note, CORE, NESTOR, NT_PRSTATUS, NT_QEMU_CPUSTATE, QEMU};
use super::reader::Note;
use super::{qemu, Invalid, SnapshotConfig, SnapshotError};
use crate::board::BoardState;
use crate::clock::ClockMode;
use crate::irq::IrqState;
use crate::machine::Machine;
use nestor_cpu::CpuState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
pub struct CpuNote {
    pub index: u32,
    /// Instructions retired since power-on: deterministic time continues from it.
    pub retired: u64,
    pub state: CpuState,
}

#[derive(Serialize, Deserialize)]
pub struct ClockNote {
    pub deterministic: bool,
    pub now_ns: u64,
    pub skipped_ns: u64,
}

#[derive(Serialize, Deserialize)]
pub struct BoardNote {
    pub board: BoardState,
    pub irq: IrqState,
}

#[derive(Serialize, Deserialize)]
pub struct DeviceNote {
    /// The device's stable name (`Device::name`), e.g. "uart@3f8".
    pub key: String,
    /// The version its state was saved with.
    pub version: u32,
    pub state: Vec<u8>,
}

/// Everything but RAM, decoded.
pub struct Decoded {
    pub cpu: CpuNote,
    pub config: SnapshotConfig,
    pub clock: ClockNote,
    pub board: BoardNote,
    pub bios: Option<nestor_bios::BiosState>,
    pub rom: Vec<u8>,
    pub devices: BTreeMap<String, DeviceNote>,
}

/// The version number device states begin with (see `nestor_device::save_state`).
fn leading_version(state: &[u8]) -> u32 {
    bincode::decode_from_slice::<u32, _>(state, bincode::config::standard()).map_or(0, |(v, _)| v)
}

struct Body {
    bytes: Vec<u8>,
    count: u32,
}

impl Body {
    fn push(&mut self, name: &[u8], n_type: u32, desc: &[u8]) {
        push_note(&mut self.bytes, name, n_type, desc);
        self.count += 1;
    }
    fn encode<T: Serialize>(&mut self, n_type: u32, value: &T) -> Result<(), SnapshotError> {
        let desc = notes::encode(value).map_err(SnapshotError::Capture)?;
        self.push(NESTOR, n_type, &desc);
        Ok(())
    }
}

/// Every note of the machine after the header, and how many there are.
pub fn capture(
    machine: &Machine,
    config: &SnapshotConfig,
) -> Result<(Vec<u8>, u32), SnapshotError> {
    let mut body = Body {
        bytes: Vec::new(),
        count: 0,
    };
    let state = machine.vcpu.state();
    body.push(CORE, NT_PRSTATUS, &qemu::prstatus(&state, 0));
    body.push(QEMU, NT_QEMU_CPUSTATE, &qemu::cpu_state(&state));
    let retired = machine.vcpu.retired();
    body.encode(
        kind::CPU,
        &CpuNote {
            index: 0,
            retired,
            state,
        },
    )?;
    body.encode(kind::CONFIG, config)?;
    let clock = &machine.board.clock;
    body.encode(
        kind::CLOCK,
        &ClockNote {
            deterministic: clock.mode() == ClockMode::Deterministic,
            now_ns: clock.now_ns(retired),
            skipped_ns: clock.skipped_ns(),
        },
    )?;
    body.encode(
        kind::BOARD,
        &BoardNote {
            board: machine.board.state.clone(),
            irq: machine.board.irq.state.clone(),
        },
    )?;
    body.encode(
        kind::BIOS,
        &machine.bios.as_ref().map(|b| b.state().clone()),
    )?;
    body.push(NESTOR, kind::ROM, machine.board.wires.mem.rom());
    let irq = &machine.board.irq;
    let controllers: [&dyn nestor_device::Device; 3] = [&irq.pic, &irq.ioapic, &irq.lapic];
    let devices = controllers
        .into_iter()
        .chain(machine.board.devices().iter().map(|d| d.as_ref()));
    let mut seen = std::collections::BTreeSet::new();
    for d in devices {
        let key = d.name().to_string();
        if !seen.insert(key.clone()) {
            return Err(SnapshotError::Capture(format!(
                "two devices are named {key}"
            )));
        }
        let state = d
            .save()
            .map_err(|e| SnapshotError::Capture(format!("device {key}: {e}")))?;
        let version = leading_version(&state);
        body.encode(
            kind::DEVICE,
            &DeviceNote {
                key,
                version,
                state,
            },
        )?;
    }
    Ok((body.bytes, body.count))
}

fn corrupted(what: &str, e: impl std::fmt::Display) -> Invalid {
    Invalid::Corrupted(format!("{what} note: {e}"))
}

fn once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), Invalid> {
    if slot.replace(value).is_some() {
        return Err(Invalid::Corrupted(format!("two {what} notes")));
    }
    Ok(())
}

/// Decode Nestor's notes (the CORE and QEMU notes are for other tools and are skipped).
pub fn decode(all: &[Note<'_>]) -> Result<Decoded, Invalid> {
    let (mut cpu, mut config, mut clock, mut board, mut bios, mut rom) =
        (None, None, None, None, None, None);
    let mut devices = BTreeMap::new();
    for n in all.iter().filter(|n| n.name == NESTOR) {
        let d = n.desc;
        match n.n_type {
            kind::CPU => once(
                &mut cpu,
                notes::decode(d).map_err(|e| corrupted("CPU", e))?,
                "CPU",
            )?,
            kind::CONFIG => {
                let c = notes::decode(d).map_err(|e| corrupted("configuration", e))?;
                once(&mut config, c, "configuration")?;
            }
            kind::CLOCK => {
                once(
                    &mut clock,
                    notes::decode(d).map_err(|e| corrupted("clock", e))?,
                    "clock",
                )?;
            }
            kind::BOARD => {
                once(
                    &mut board,
                    notes::decode(d).map_err(|e| corrupted("board", e))?,
                    "board",
                )?;
            }
            kind::BIOS => once(
                &mut bios,
                notes::decode(d).map_err(|e| corrupted("BIOS", e))?,
                "BIOS",
            )?,
            kind::ROM => once(&mut rom, d.to_vec(), "firmware")?,
            kind::DEVICE => {
                let dev: DeviceNote = notes::decode(d).map_err(|e| corrupted("device", e))?;
                if devices.contains_key(&dev.key) {
                    return Err(Invalid::Corrupted(format!(
                        "two notes for device {}",
                        dev.key
                    )));
                }
                devices.insert(dev.key.clone(), dev);
            }
            other => {
                return Err(Invalid::Corrupted(format!(
                    "unknown Nestor note type {other}"
                )))
            }
        }
    }
    let missing = |what: &str| Invalid::Corrupted(format!("no {what} note"));
    Ok(Decoded {
        cpu: cpu.ok_or_else(|| missing("CPU"))?,
        config: config.ok_or_else(|| missing("configuration"))?,
        clock: clock.ok_or_else(|| missing("clock"))?,
        board: board.ok_or_else(|| missing("board"))?,
        bios: bios.ok_or_else(|| missing("BIOS"))?,
        rom: rom.ok_or_else(|| missing("firmware"))?,
        devices,
    })
}

fn restore_one(
    dev: &mut dyn nestor_device::Device,
    notes: &mut BTreeMap<String, DeviceNote>,
) -> Result<(), SnapshotError> {
    let key = dev.name().to_string();
    let note = notes.remove(&key).ok_or_else(|| {
        SnapshotError::Device(key.clone(), "the snapshot has no state for it".into())
    })?;
    dev.restore(&note.state)
        .map_err(|e| SnapshotError::Device(key, e.to_string()))
}

/// Put the decoded state into a freshly built machine whose RAM is already the snapshot's.
pub fn apply(machine: &mut Machine, mut d: Decoded) -> Result<(), SnapshotError> {
    let board = &mut machine.board;
    restore_one(&mut board.irq.pic, &mut d.devices)?;
    restore_one(&mut board.irq.ioapic, &mut d.devices)?;
    restore_one(&mut board.irq.lapic, &mut d.devices)?;
    for dev in board.devices_mut() {
        restore_one(dev.as_mut(), &mut d.devices)?;
    }
    if let Some(extra) = d.devices.keys().next() {
        return Err(SnapshotError::Device(
            extra.clone(),
            "the snapshot holds a device this machine does not have".into(),
        ));
    }
    board.state = d.board.board;
    board.irq.state = d.board.irq;
    if board.irq.state.asserted.len() != crate::irq::LINES {
        return Err(
            Invalid::Corrupted("the interrupt wiring has the wrong line count".into()).into(),
        );
    }
    board.after_restore();
    machine.bios = d.bios.map(nestor_bios::Bios::from_state);
    let missing = cr4_features_missing(d.cpu.state.cr4, &machine.engine_model);
    if !missing.is_empty() {
        return Err(SnapshotError::CpuFeatures {
            features: missing.join(", "),
            engine: machine.vcpu.name().to_string(),
        });
    }
    // Whichever engine the resume chose takes the state and the retired count that
    // deterministic time is derived from.
    machine
        .vcpu
        .set_state(&d.cpu.state)
        .map_err(crate::machine::MachineError::from)?;
    machine.vcpu.set_retired(d.cpu.retired);
    let clock = &mut machine.board.clock;
    if d.clock.deterministic {
        // A fresh clock has skipped nothing: skip exactly what the saved one had.
        let now = clock.now_ns(d.cpu.retired);
        clock.idle_until(d.cpu.retired, now.saturating_add(d.clock.skipped_ns));
    } else {
        clock.continue_realtime_from(d.clock.now_ns);
    }
    Ok(())
}

/// Optional CR4 features the saved guest has turned on that `model` does not offer (a guest
/// booted on the interpreter's full model cannot move to a KVM that lacks, say, LA57).
pub(crate) fn cr4_features_missing(
    cr4: u64,
    model: &nestor_cpu::cpuid::CpuModel,
) -> Vec<&'static str> {
    use nestor_cpu::cpuid::{ecx, leaf7};
    use nestor_cpu::state::cr4 as bit;
    let features = [
        (
            bit::LA57,
            model.leaf7[1] & leaf7::ECX_LA57,
            "5-level paging (CR4.LA57)",
        ),
        (
            bit::FSGSBASE,
            model.leaf7[0] & leaf7::EBX_FSGSBASE,
            "CR4.FSGSBASE",
        ),
        (bit::SMEP, model.leaf7[0] & leaf7::EBX_SMEP, "CR4.SMEP"),
        (bit::SMAP, model.leaf7[0] & leaf7::EBX_SMAP, "CR4.SMAP"),
        (bit::UMIP, model.leaf7[1] & leaf7::ECX_UMIP, "CR4.UMIP"),
        (bit::PCIDE, model.features_ecx & ecx::PCID, "CR4.PCIDE"),
        (bit::OSXSAVE, model.features_ecx & ecx::XSAVE, "CR4.OSXSAVE"),
    ];
    features
        .iter()
        .filter(|(flag, offered, _)| cr4 & flag != 0 && *offered == 0)
        .map(|(_, _, name)| *name)
        .collect()
}
