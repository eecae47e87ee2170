fn main() -> std::process::ExitCode {
    opsbook::cli::main()
}
