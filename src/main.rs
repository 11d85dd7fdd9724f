//! The tcplab command: parses the command line and hands it to the library.

use clap::Parser;

fn main() {
    let cli = tcplab::commands::Cli::parse();
    let code = match tcplab::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcplab: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
