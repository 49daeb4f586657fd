//! Sound and gamepad for `nestor run`: `--audio-wav` records the guest's sound, `--audio`
//! plays it on the host, `--gamepad` feeds the game port from the host's pads.

use clap::{Args, ValueEnum};
use nestor_machine::{ClockMode, Machine};
use nestor_sound::{AudioSink, Frame};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostUse {
    /// Use the host's device when time is real time (not with --deterministic).
    Auto,
    /// Use the host's device if there is one.
    Host,
    /// Never touch the host's device.
    None,
}

#[derive(Args, Debug)]
pub struct AudioArgs {
    /// Record what the guest plays as a 16-bit stereo WAV at 48 kHz; samples are placed by
    /// virtual time, so a --deterministic run writes the same file every time.
    #[arg(long, value_name = "PATH.wav")]
    audio_wav: Option<PathBuf>,
    /// Play the guest's sound on the host's sound card (cpal). Without one it is discarded.
    #[arg(long, value_enum, default_value_t = HostUse::Auto)]
    audio: HostUse,
    /// Feed the game port (0x201) from the host's gamepads (gilrs).
    #[arg(long, value_enum, default_value_t = HostUse::Auto)]
    gamepad: HostUse,
}

/// The sinks every machine of this process plays into.
type Sinks = Arc<Mutex<Vec<Box<dyn AudioSink>>>>;

fn lock(sinks: &Sinks) -> MutexGuard<'_, Vec<Box<dyn AudioSink>>> {
    // A sink that panicked poisons nothing we cannot go on with.
    sinks.lock().unwrap_or_else(|e| e.into_inner())
}

/// One machine's way into the shared sinks.
struct SharedSinks(Sinks);

impl AudioSink for SharedSinks {
    fn write(&mut self, frames: &[Frame]) {
        for sink in lock(&self.0).iter_mut() {
            sink.write(frames);
        }
    }
    fn flush(&mut self) {
        for sink in lock(&self.0).iter_mut() {
            sink.flush();
        }
    }
}

/// Host resources attached to a machine; dropping every clone stops them. A machine swapped
/// in later (a restored snapshot) is [`AudioSession::connect`]ed to the same WAV file and
/// sound card, so a recording goes on across the restore.
#[derive(Clone)]
pub struct AudioSession {
    sinks: Sinks,
    gamepad_wanted: bool,
    gamepad: Arc<Mutex<Option<nestor_audio::GamepadThread>>>,
}

fn wanted(choice: HostUse, clock: ClockMode) -> bool {
    match choice {
        HostUse::Auto => clock == ClockMode::Realtime,
        HostUse::Host => true,
        HostUse::None => false,
    }
}

/// Open the WAV recorder, host playback and gamepads the flags ask for, and connect them.
pub fn attach(machine: &mut Machine, args: &AudioArgs) -> anyhow::Result<AudioSession> {
    let clock = machine.board.clock.mode();
    let mut sinks: Vec<Box<dyn AudioSink>> = Vec::new();
    if let Some(path) = &args.audio_wav {
        let wav = nestor_audio::WavWriter::create(path)
            .map_err(|e| anyhow::anyhow!("cannot record audio to {}: {e}", path.display()))?;
        sinks.push(Box::new(wav));
    }
    if wanted(args.audio, clock) {
        if let Some(out) = nestor_audio::open_host_output() {
            sinks.push(Box::new(out));
        }
    }
    let session = AudioSession {
        sinks: Arc::new(Mutex::new(sinks)),
        gamepad_wanted: wanted(args.gamepad, clock),
        gamepad: Arc::new(Mutex::new(None)),
    };
    session.connect(machine);
    Ok(session)
}

impl AudioSession {
    /// Play `machine`'s sound into the sinks from its present virtual time on (a resumed
    /// machine's earlier time is not recorded as silence), and feed its game port.
    pub fn connect(&self, machine: &mut Machine) {
        let now = machine.board.clock.now_ns(machine.vcpu.retired());
        // With no sinks yet, this only moves the mixer's start to the present.
        machine.audio.finish(nestor_sound::frame_at_ns(now));
        if !lock(&self.sinks).is_empty() {
            machine
                .audio
                .add_sink(Box::new(SharedSinks(Arc::clone(&self.sinks))));
        }
        if self.gamepad_wanted {
            let mut thread = self.gamepad.lock().unwrap_or_else(|e| e.into_inner());
            // The old thread fed the old machine's port: stop it before starting the next.
            *thread = None;
            if let Some(port) = machine.board.device_mut::<nestor_gameport::Gameport>() {
                *thread = nestor_audio::spawn_gamepad_thread(port.input());
            }
        }
    }
}

/// The run ended: everything up to the machine's current virtual time goes to the sinks.
pub fn finish(machine: &Machine) {
    let now = machine.board.clock.now_ns(machine.vcpu.retired());
    machine.audio.finish(nestor_sound::frame_at_ns(now));
}
