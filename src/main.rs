//! Parses the flags and starts the proxy; everything else lives in the library.

use std::process::ExitCode;

use actionloop::settings::{Flags, Settings};

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("actionloop: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.version {
        println!("actionloop {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(flags) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("actionloop: {e}");
            return ExitCode::from(2);
        }
    };
    actionloop::init_tracing(&settings);
    let outcome = match settings.compile.clone() {
        Some(main) => actionloop::compile::run(&settings, &main),
        None => actionloop::serve(settings),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actionloop: {e}");
            ExitCode::FAILURE
        }
    }
}
