//! Parses the flags and starts the proxy; everything else lives in the library.

use std::process::ExitCode;

use actionloop::StartupError;
use actionloop::settings::{Flags, Settings};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actionloop: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<(), StartupError> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    if flags.version {
        println!("actionloop {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let settings = Settings::load(flags)?;
    actionloop::init_tracing(&settings);
    match settings.compile.clone() {
        Some(main) => actionloop::compile::run(&settings, &main),
        None => actionloop::serve(settings),
    }
}
