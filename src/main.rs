//! The tcplab command: parses the command line and hands it to the library.

use clap::Parser;

fn main() {
    // Like every Unix filter: `tcplab status | head -1` ends quietly when the reader goes away
    // (Rust ignores SIGPIPE by default, which turns a closed pipe into a panic in println!).
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
