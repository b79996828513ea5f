from ._interrupt import main

main()
