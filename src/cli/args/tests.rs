//! The command line as clap reads it: flags, conflicts, defaults and help text.

use crate::exit::*;
use clap::CommandFactory;

/// Every argument says what it is, and every command shows an example.
#[test]
fn every_argument_has_help_and_every_command_an_example() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name()).trim().to_string();
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if !matches!(id, "help" | "version") && a.get_help().is_none() {
                missing.push(format!("{path}: argument {id} has no help"));
            }
        }
        let leaf = cmd.get_subcommands().next().is_none();
        // A hidden command is flow's own (a load worker): people do not type it.
        if leaf
            && path != "flow help"
            && !cmd.is_hide_set()
            && !cmd.get_after_help().is_some_and(|h| h.to_string().contains("Examples:"))
        {
            missing.push(format!("{path}: no examples"));
        }
        for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&super::Cli::command(), "", &mut missing);
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn help_lists_every_exit_code() {
    let codes = [
        OK,
        FAILED,
        USAGE,
        BAD_SPEC,
        BAD_PLAN,
        REFUSED,
        STATE,
        PLANNER,
        INVALID,
        WAITING_APPROVAL,
        WAITING,
        UNSUPPORTED,
        INTERNAL,
        CANCELLED,
    ];
    let listed: Vec<i32> =
        super::EXIT_CODES.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(listed, codes);
}
