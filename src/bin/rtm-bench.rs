fn main() {
    eprintln!("rtm-bench: not built yet");
    std::process::exit(1);
}
