//! Plain-text tables for the terminal: column widths from the data, colour
//! for states only when stdout is a terminal.

use std::io::{IsTerminal, Write};

/// One cell: text, and whether it names a state worth colouring.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    colour: Option<&'static str>,
}

impl Cell {
    /// Uncoloured text.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            colour: None,
        }
    }

    /// A state or outcome, coloured green / yellow / red / grey on a terminal.
    pub fn status(text: impl Into<String>) -> Self {
        let text = text.into();
        // By the first word: `flapping (restart in 32s)`, `recovering (paused)`.
        let colour = match text.split(' ').next().unwrap_or_default() {
            "ok" | "healthy" | "idle" => "32",
            "starting" | "recovering" | "rolling_back" | "paused" | "warning" | "restarting"
            | "replacing" => "33",
            "fail" | "failing" | "escalated" | "unhealthy" | "failed" | "missing" | "error"
            | "flapping" => "31",
            _ => "90",
        };
        Self {
            text,
            colour: Some(colour),
        }
    }
}

/// A table being built.
#[derive(Debug)]
pub struct Table {
    header: Vec<Cell>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            header: header.into_iter().map(Cell::plain).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<const N: usize>(&mut self, cells: [Cell; N]) {
        self.rows.push(cells.into());
    }

    /// Writes the table, coloured when stdout is a terminal.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let columns = self.header.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r.get(c).map_or(0, |cell| cell.text.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c].saturating_sub(cell.text.chars().count());
                let last = c + 1 == columns;
                match (colour, cell.colour) {
                    (true, Some(code)) => {
                        line.push_str(&format!("\x1b[{code}m{}\x1b[0m", cell.text))
                    }
                    _ => line.push_str(&cell.text),
                }
                if !last {
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
