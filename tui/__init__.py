"""The Textual dashboard application: app, screens, key map, styles."""
