//! The `wc-host` binary: parse, dispatch, exit code.

use clap::Parser;

use wc_host::cli::Cli;

fn main() {
    let cli = Cli::parse();
    wc_host::logging::init(cli.quiet, cli.verbose);
    match cli.run() {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
