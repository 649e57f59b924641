from groundkit.cli import main

main()
