"""``python -m piano_metronome`` runs the command-line tool."""

from piano_metronome.cli import main

main()
