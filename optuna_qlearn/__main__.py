from optuna_qlearn.cli import main

raise SystemExit(main())
