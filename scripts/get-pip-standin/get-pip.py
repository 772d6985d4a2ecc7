"""Stand-in for get-pip.py, for machines that cannot reach the host it is downloaded from.

ansible-test bootstraps pip into each virtual environment it creates (made with
--without-pip) by running a cached get-pip.py with pip's own install arguments,
for example:  get-pip.py --disable-pip-version-check pip==25.2 --no-setuptools --no-wheel

This file does the same job with the standard library's ensurepip: it installs the
pip wheel bundled with the interpreter, then lets that pip install the requested
packages from the configured package index. scripts/ansible-test.sh copies it into
ansible-test's cache (~/.ansible/test/cache/get_pip_<pip version>.py).
"""
import subprocess
import sys

# scripts/ansible-test.sh replaces a cached get-pip that contains this marker, and no other.
MARKER = 'fleetwall get-pip stand-in'

# get-pip.py options that "pip install" does not know.
GET_PIP_ONLY = ('--no-setuptools', '--no-wheel', '--no-pip')


def main():
    """Install pip with ensurepip, then what the arguments ask for with that pip."""
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'],
                          stdout=subprocess.DEVNULL)
    if '--no-setuptools' in sys.argv:
        # ensurepip of Python 3.11 and older also installs setuptools; get-pip.py would not.
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '-y', '-q', 'setuptools'],
                              stderr=subprocess.DEVNULL)
    if args:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args)


if __name__ == '__main__':
    try:
        main()
    except subprocess.CalledProcessError as ex:
        sys.stderr.write('%s: %s\n' % (MARKER, ex))
        sys.exit(ex.returncode or 1)
