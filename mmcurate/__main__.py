from mmcurate.pipelines.cli import main

raise SystemExit(main())
