from kemu.cli import main

main()
