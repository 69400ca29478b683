from unified_ai.cli import main

main()
