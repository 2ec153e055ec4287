from coreroll.cli import main

raise SystemExit(main())
