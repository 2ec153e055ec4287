"""The dashboard's composition root (`coreroll dash`, `dash --serve`, its browser sessions, `coreroll
demo`): flags -> `coreroll.watch.setup.DashboardSetup` -> the UI (`tui`), reached only through
`ui.ui_module`. Kept in a package so that building the CLI's parser (which imports every module
of `coreroll.commands`) loads none of it."""
