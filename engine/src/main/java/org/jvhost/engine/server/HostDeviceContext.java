package org.jvhost.engine.server;

import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceState;

/** The {@link DeviceContext} a {@link Host} gives a device: its name, fd watches on its workers and config-change notices. */
final class HostDeviceContext implements DeviceContext {
    final DeviceRuntime runtime;
    final Host host;

    HostDeviceContext(Host host, DeviceRuntime runtime) {
        this.host = host;
        this.runtime = runtime;
    }

    @Override
    public String deviceName() {
        return runtime.name();
    }

    @Override
    public FdWatch watchReadable(int fd, int queueGroup, Runnable onReadable) {
        return runtime.watchReadable(fd, queueGroup, onReadable);
    }

    @Override
    public boolean notifyConfigChanged() {
        return runtime.notifyConfigChanged();
    }

    @Override
    public DeviceState handedOverState() {
        return host.handedOverState(runtime.name());
    }

    @Override
    public String toString() {
        return runtime.name();
    }
}
