//! The tcplab command: parses the command line and hands it to the library.

use clap::Parser;

fn main() {
    // Like every Unix filter: `tcplab status | head -1` ends quietly when the reader goes away
    // (Rust ignores SIGPIPE by default, which turns a closed pipe into a panic in println!).
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match tcplab::commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                e.exit();
            }
            // One line, as every other error: what is wrong, and where to look.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad command line");
            let first = first.trim_start_matches("error: ");
            eprintln!("tcplab: {first} (see `tcplab --help`)");
            std::process::exit(2);
        }
    };
    let code = match tcplab::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcplab: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
