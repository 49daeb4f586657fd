//! The plugin list of the PC: which device models a machine has and how they are configured.

use crate::board::Board;
use crate::machine::MachineError;
use nestor_device::{CharBackend, DeviceConfig, NullBackend, PluginDescriptor};

/// COM1..COM4: base port and IRQ line.
pub const SERIAL_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

fn build(
    p: &PluginDescriptor,
    options: &[(&str, String)],
    chardev: Option<Box<dyn CharBackend>>,
    start: i64,
) -> Result<Box<dyn nestor_device::Device>, MachineError> {
    let mut cfg = DeviceConfig {
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        chardev,
        start_time_unix: start,
    };
    Ok((p.create)(&mut cfg)?)
}

pub(crate) fn attach_pc_devices(
    board: &mut Board,
    audio: &nestor_sound::Mixer,
    serial: [Option<Box<dyn CharBackend>>; 4],
    debugcon: Option<Box<dyn CharBackend>>,
    post_log: Option<Box<dyn CharBackend>>,
    start: i64,
    ram_mib: u64,
) -> Result<(), MachineError> {
    let speaker = nestor_pcspk::PcSpeaker::new(audio.channel("pcspk"));
    let mut pit = nestor_pit::Pit::new();
    pit.connect_speaker(Box::new(speaker.wire()));
    let mut devs: Vec<Box<dyn nestor_device::Device>> = vec![
        Box::new(pit),
        Box::new(speaker),
        Box::new(rtc_with_memory_size(start, ram_mib)),
        build(
            &nestor_post::PLUGIN,
            &[],
            Some(post_log.unwrap_or_else(|| Box::new(NullBackend))),
            start,
        )?,
        build(
            &nestor_debugcon::PLUGIN,
            &[],
            Some(debugcon.unwrap_or_else(|| Box::new(NullBackend))),
            start,
        )?,
        build(&nestor_debugexit::PLUGIN, &[], None, start)?,
        build(&nestor_poweroff::PLUGIN, &[], None, start)?,
    ];
    devs.extend([
        build(&nestor_pci_host::PLUGIN, &[], None, start)?,
        build(&nestor_piix3::PLUGIN, &[], None, start)?,
        build(&nestor_acpi_pm::PLUGIN, &[], None, start)?,
        build(&nestor_hpet::PLUGIN, &[], None, start)?,
        Box::new(fw_cfg(ram_mib)?),
        build(&nestor_i8042::PLUGIN, &[], None, start)?,
        build(&nestor_gameport::PLUGIN, &[], None, start)?,
        build(
            &nestor_vga::PLUGIN,
            &[("pci", "1".to_string())],
            None,
            start,
        )?,
        Box::new(nestor_ide::Ide::new()),
        Box::new(crate::isa_dma::IsaDma::with_sound(audio.channel("sb16"))),
    ]);
    for ((base, irq), backend) in SERIAL_PORTS.into_iter().zip(serial) {
        let opts = [("iobase", format!("{base:#x}")), ("irq", irq.to_string())];
        devs.push(build(
            &nestor_uart::PLUGIN,
            &opts,
            Some(backend.unwrap_or_else(|| Box::new(NullBackend))),
            start,
        )?);
    }
    for d in devs {
        board.attach(d).map_err(MachineError::Wiring)?;
    }
    crate::pci::check_slots(board.devices_mut()).map_err(MachineError::Wiring)?;
    Ok(())
}

/// QEMU's firmware configuration device with what SeaBIOS and OVMF ask first.
fn fw_cfg(ram_mib: u64) -> Result<nestor_fwcfg::FwCfg, MachineError> {
    use nestor_fwcfg::key;
    let mut fw = nestor_fwcfg::FwCfg::new();
    let wiring = |e: nestor_fwcfg::FwCfgError| MachineError::Wiring(format!("fw_cfg: {e}"));
    fw.set_u64(key::RAM_SIZE, ram_mib << 20).map_err(wiring)?;
    fw.set_u16(key::NB_CPUS, 1).map_err(wiring)?;
    fw.set_u16(key::MAX_CPUS, 1).map_err(wiring)?;
    Ok(fw)
}

/// The RTC with the CMOS bytes a PC BIOS reads for the memory size (IBM AT layout, plus the
/// 64 KiB-unit fields Bochs and SeaBIOS use above 16 MiB and 4 GiB).
fn rtc_with_memory_size(start: i64, ram_mib: u64) -> nestor_rtc::Rtc {
    let mut rtc = nestor_rtc::Rtc::new(start);
    let ram = ram_mib << 20;
    let low = ram.min(crate::memory::PCI_HOLE_START);
    let ext_kib = (low.saturating_sub(1 << 20) >> 10).min(0xffff);
    let above_16m = (low.saturating_sub(16 << 20) >> 16).min(0xffff);
    let above_4g = (ram - low) >> 16;
    let set16 = |rtc: &mut nestor_rtc::Rtc, at: u8, v: u64| {
        rtc.set_cmos(at, v as u8);
        rtc.set_cmos(at + 1, (v >> 8) as u8);
    };
    set16(&mut rtc, 0x15, 640);
    set16(&mut rtc, 0x17, ext_kib);
    set16(&mut rtc, 0x30, ext_kib);
    set16(&mut rtc, 0x34, above_16m);
    rtc.set_cmos(0x5b, above_4g as u8);
    rtc.set_cmos(0x5c, (above_4g >> 8) as u8);
    rtc.set_cmos(0x5d, (above_4g >> 16) as u8);
    rtc
}
