//! Man pages from the binaries' clap definitions (`--print-man-page`), with an optional
//! COMMANDS section listing a grammar line by line.

use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

/// Writes the man page of `cmd` in `section` to stdout; `grammar` (command, what it does)
/// becomes a COMMANDS section when not empty.
pub fn print(cmd: clap::Command, section: &str, grammar: &[(String, &str)]) -> std::io::Result<()> {
    let man = Man::new(cmd).section(section).manual("rtm");
    let mut out: Vec<u8> = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if grammar.is_empty() {
        man.render_subcommands_section(&mut out)?;
    } else {
        let mut roff = Roff::new();
        roff.control("SH", ["COMMANDS"]);
        for (line, about) in grammar {
            roff.control("TP", []);
            roff.text([roman(line.as_str())]);
            roff.text([roman(*about)]);
        }
        roff.to_writer(&mut out)?;
    }
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    super::print(&String::from_utf8_lossy(&out))
}
