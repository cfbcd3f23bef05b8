//! The `kiroku` binary: hands the command line to [`kiroku::cli`].

fn main() -> std::process::ExitCode {
    kiroku::cli::main()
}
