from ai_assets.cli import main

raise SystemExit(main())
