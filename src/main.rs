//! The `chatcap` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    chatcap::cli::main(chatcap::cli::Cli::parse())
}
